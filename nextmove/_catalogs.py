"""The content catalog as the engine's `CatalogSupport`: read, cross-check and store the catalog
files deployed with the maps. It lives here, above both, because `content_catalog` builds on
the engine: the engine defines what it needs (`engine.catalogs`) and this module supplies it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from content_catalog import (
    Catalog,
    CatalogNotFound,
    StoredCatalog,
    cross_check,
    load_catalog,
    load_stored_catalog,
    store_catalog,
)
from engine import Clock, Problem, Store
from engine.catalogs import HookUses, MapSteps

if TYPE_CHECKING:
    from engine import LoadReport


class ContentCatalogs:
    """`engine.catalogs.CatalogSupport` over `content_catalog`."""

    def load(self, path: Path) -> Catalog:
        return load_catalog(path)

    def cross_check(self, catalog: Catalog, hooks_used: HookUses, map_steps: MapSteps
                    ) -> list[Problem]:
        return cross_check(catalog, hooks_used, map_steps)

    def stored(self, store: Store) -> Catalog | None:
        try:
            return load_stored_catalog(store)
        except CatalogNotFound:
            return None

    def deploy(self, store: Store, catalog: Catalog, clock: Clock, source: str | None = None
               ) -> StoredCatalog:
        assert catalog.file is not None  # loaded from a file by `load`
        text = Path(catalog.file).read_text(encoding="utf-8")
        return store_catalog(store, text, source or catalog.file, clock=clock)


CONTENT_CATALOGS = ContentCatalogs()


def load(paths: Iterable[str | Path], *, allow_scripts: bool = False,
         build: bool = True) -> LoadReport:
    """Load and check the maps and content catalogs under `paths` (what `nextmove validate`
    reports); never raises for a bad file."""
    from engine.definitions.loader import load as load_maps  # the BPMN parser, when needed

    return load_maps(paths, allow_scripts=allow_scripts, build=build, catalogs=CONTENT_CATALOGS)
