"""nextmove, assembled: the one way in for the CLI, the simulator, benchmarks and embedders.

    from nextmove import open_engine
    engine = open_engine("nextmove.db")          # or a postgresql:// URL
    engine.deploy(["processes/lifevantage"])     # maps and their content catalog
    engine.start("prospect_journey", prospect_id="p1", distributor_id="d1")
    card = engine.cards("d1")[0]
    card.content                                 # the recommended content, best first

`open_engine` prepares the database (creates the schema, or upgrades one an older nextmove
made, and refuses one that is not nextmove's), then puts the store, the content catalog's
recommender and catalog support, and the clock together in an `engine.Engine`. `open_store`
is the prepared database alone; `load` checks maps and catalogs without a database.
"""

from nextmove._catalogs import CONTENT_CATALOGS, ContentCatalogs, load
from nextmove._open import open_engine, open_store

__all__ = ["CONTENT_CATALOGS", "ContentCatalogs", "load", "open_engine", "open_store"]
