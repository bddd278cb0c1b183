"""One module per kernel story; ``MODELS`` maps each model's name to its class."""

from __future__ import annotations

import importlib

from ..engine.errors import KvmlabError

# name -> module; a module defines exactly one Model subclass with that name
MODULES = {
    "lost_update": "lost_update",
    "apf_wake": "apf_wake",
}


def get(name: str):
    """The Model class called ``name``."""
    if name not in MODULES:
        raise KvmlabError(f"unknown model {name!r} (known: {', '.join(sorted(MODULES))})")
    mod = importlib.import_module(f"{__name__}.{MODULES[name]}")
    from ..engine.model import Model
    for obj in vars(mod).values():
        if isinstance(obj, type) and issubclass(obj, Model) and obj is not Model and obj.name == name:
            return obj
    raise KvmlabError(f"model module {MODULES[name]} defines no model {name!r}")


def names() -> list[str]:
    return sorted(MODULES)
