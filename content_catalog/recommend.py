"""The recommender interface and its results, defined by the engine (`engine.recommend`) and
re-exported here, where the catalog's recommender implements it."""

from engine.recommend import Ranked, Recommendation, Recommender

__all__ = ["Ranked", "Recommendation", "Recommender"]
