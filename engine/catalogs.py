"""Content catalogs as the engine sees them: files deployed with the maps, whose items fill the
maps' hooks.

The engine recognizes a catalog file (a YAML file whose top level has `catalog:`) but reads,
checks and stores it only through a `CatalogSupport` given to it: `content_catalog` builds on
the engine, so the engine cannot import it. `nextmove.open_engine` and `nextmove.load` pass
the content catalog's support; a bare `Engine` without one deploys maps only and reports each
catalog file it skipped as a warning.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from engine.clock import Clock
    from engine.errors import Problem
    from engine.store.database import Store

# hook -> the places maps use it: (file, step id, line)
HookUses = Mapping[str, Sequence[tuple[str, str, int | None]]]
MapSteps = Mapping[str, Collection[str]]
"""Per map file, the ids of its steps and events."""


class CatalogSupport(Protocol):
    """Reads, checks and stores the content catalogs deployed with process maps."""

    def load(self, path: Path) -> Any:
        """The catalog in `path`; raises `DefinitionError`/`DefinitionErrors` if it is invalid.
        The result must have a `file` attribute naming the file it came from."""
        ...

    def cross_check(self, catalog: Any, hooks_used: HookUses, map_steps: MapSteps
                    ) -> list[Problem]:
        """Problems between a loaded catalog and the hooks (and steps) the loaded maps use."""
        ...

    def stored(self, store: Store) -> Any | None:
        """The catalog the database serves now (None: it holds none): what maps deployed
        without a catalog are checked against."""
        ...

    def deploy(self, store: Store, catalog: Any, clock: Clock, source: str | None = None
               ) -> Any:
        """Store a loaded catalog (inside `Engine.deploy`, after the maps); what was stored.
        `source`: what to record as the file it came from (default: its path)."""
        ...
