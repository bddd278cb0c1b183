"""Displays for notebooks and the static book: the stepper, check summaries, progress."""

from __future__ import annotations

from ..export import export_graph
from .stepper import Stepper
from .summary import Progress, compare, summary

__all__ = ["Progress", "Stepper", "compare", "export_graph", "summary"]
