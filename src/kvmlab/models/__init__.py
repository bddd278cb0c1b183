"""One module per kernel story; ``MODELS`` maps each model's name to its class."""

from __future__ import annotations

import importlib

from ..engine.errors import KvmlabError

# name -> module; a module defines exactly one Model subclass with that name
MODULES = {
    "lost_update": "lost_update",
    "apf_wake": "apf_wake",
    "fast_pf": "fast_pf",
    "apf_handshake": "apf_handshake",
    "rcu_watch": "rcu_watch",
    "apf_wait": "apf_wait",
    "kvm_lock_shrink": "kvm_lock_shrink",
    "tdp_root_put": "tdp_root_put",
    "zone_device": "zone_device",
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
