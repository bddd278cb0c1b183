"""The Python API behind the CLI: list, load, check, replay."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import models as registry
from .engine import Explorer, KvmlabError, Model, Result, System, Trace, Variant
from .engine.explorer import STEP_TIMEOUT
from .engine.trace import replay_moves


def model(name: str) -> type[Model]:
    """The Model class registered as ``name``."""
    return registry.get(name)


def load(name_or_cls: str | type[Model], variant: str | Variant | None = None,
         config: dict | None = None, params: dict | None = None) -> System:
    """A model bound to a variant, config and params, ready to explore or step."""
    if isinstance(name_or_cls, str):
        cls = registry.get(name_or_cls)
    elif isinstance(name_or_cls, type) and issubclass(name_or_cls, Model):
        cls = name_or_cls
    else:
        raise KvmlabError(f"expected a model name or a Model class, not {name_or_cls!r:.60}")
    return System(cls, variant, config, params)


def make_system(model: str | type[Model] | System, variant: str | Variant | None = None,
                config: dict | None = None, params: dict | None = None) -> System:
    """``model`` itself if it is a System already, else :func:`load` of it."""
    if isinstance(model, System):
        return model
    return load(model, variant, config, params)


def check(name_or_cls: str | type[Model], variant: str | Variant | None = None, *,
          config: dict | None = None, params: dict | None = None, max_states: int = 2_000_000,
          max_seconds: float | None = None, reduction: bool = True, fairness: str | None = None,
          liveness: bool | None = None, progress: Callable[[int, int], None] | None = None,
          step_timeout: float | None = STEP_TIMEOUT) -> Result:
    """Explore every interleaving; see :class:`kvmlab.engine.Result`.

    Progress (``terminates``) is judged unless ``liveness=False``; a step that
    raises or does not return within ``step_timeout`` seconds raises
    :class:`kvmlab.engine.StepCrash` naming the step and the schedule to it.
    """
    sys = load(name_or_cls, variant, config, params)
    return Explorer(sys, max_states=max_states, max_seconds=max_seconds, reduction=reduction,
                    fairness=fairness, liveness=liveness, progress=progress, step_timeout=step_timeout).run()


def replay(name_or_cls: str | type[Model], variant: str | Variant | None = None, *,
           schedule, config: dict | None = None, params: dict | None = None) -> Trace:
    """Replay ``schedule`` (thread ids, ``"1:fail"`` for a choice) step by step."""
    if isinstance(schedule, str | bytes) or not hasattr(schedule, "__iter__"):
        raise KvmlabError(f"schedule must be a list of thread ids such as [0, 1, '1:fail'], not {schedule!r:.60}")
    return replay_moves(load(name_or_cls, variant, config, params), schedule)


def list_models() -> list[dict[str, Any]]:
    """Every model with its variants, configs, params and properties."""
    out = []
    for name in registry.names():
        cls = registry.get(name)
        out.append({
            "name": cls.name, "title": cls.title, "source": cls.source,
            "variants": [{"name": v.name, "commit": v.commit, "desc": v.desc, "buggy": v.buggy}
                         for v in cls.variants],
            "configs": {k: {"default": c.default, "help": c.help} for k, c in cls.configs.items()},
            "params": {k: ({"default": p.default, "choices": list(p.choices), "help": p.help} if p.choices
                           else {"default": p.default, "min": p.lo, "max": p.hi, "help": p.help})
                       for k, p in cls.params.items()},
            "properties": dict(cls.properties),
            "fairness": cls.fairness,
        })
    return out
