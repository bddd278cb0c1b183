"""The model-agnostic core: how models are written, explicit states, the explorer, traces."""

from .errors import Blocked, ConfigError, KvmlabError, ModelError, Oops, Stay, StepCrash, StepTimeout, ToolError
from .explorer import Explorer, Result, Violation
from .model import DONE, Config, Model, Param, Program, StepInfo, Variant, line
from .trace import Trace, describe, replay_moves
from .world import Event, System, Vars, World

__all__ = [
    "Blocked", "Config", "ConfigError", "DONE", "Event", "Explorer", "KvmlabError", "Model", "ModelError",
    "Oops", "Param", "Program", "Result", "Stay", "StepCrash", "StepInfo", "StepTimeout", "System", "ToolError",
    "Trace", "Variant", "Vars", "Violation", "World", "describe", "line", "replay_moves",
]
