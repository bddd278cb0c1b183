"""The model-agnostic core: how models are written, explicit states, the explorer, traces."""

from .errors import Blocked, KvmlabError, ModelError, Stay
from .explorer import Explorer, Result, Violation
from .model import DONE, Config, Model, Param, Program, StepInfo, Variant, line
from .trace import Trace, describe, replay_moves
from .world import Event, System, Vars, World

__all__ = [
    "Blocked", "Config", "DONE", "Event", "Explorer", "KvmlabError", "Model", "ModelError",
    "Param", "Program", "Result", "Stay", "StepInfo", "System", "Trace", "Variant", "Vars",
    "Violation", "World", "describe", "line", "replay_moves",
]
