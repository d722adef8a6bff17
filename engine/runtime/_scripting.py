"""The script engine an `Engine` runs its maps with: safe expressions plus the engine's clock."""

from __future__ import annotations

from typing import Any

from engine.clock import Clock
from engine.expressions import SafeScriptEngine
from engine.limits import check_cardinality


class ClockedScriptEngine(SafeScriptEngine):
    """Safe expressions plus the engine's clock, which nextmove's timers read."""

    def __init__(self, clock: Clock, allow_scripts: bool = False) -> None:
        super().__init__(allow_scripts=allow_scripts)
        self.clock = clock

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        value = super().evaluate(task, expression, external_context)
        check_cardinality(task, expression, value)  # before Spiff makes that many instances
        return value
