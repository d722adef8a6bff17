"""Nested cross-fitting's models are the same whether fitted one at a time or several at once,
categorical codes come out as a dict lookup of every value would give them, and the
folds' predictions are each model's plain predictions of its rows."""

from __future__ import annotations

import os

import numpy as np

from learner._crossfit import CrossFit, parallel, workers
from learner._segments import case_folds
from learner.model import OutcomeModel, _codes
from tests.learner.test_model import table


def test_fits_run_side_by_side_give_the_same_models() -> None:
    data = table(3000, seed=4)
    fold = case_folds(data["case_id"], 4, seed=0)
    features = ["hook", "shown", "prospect_interest", "step_index"]
    one = {"seed": 0, "num_threads": 1, "n_estimators": 30}
    # one thread each: as many at once as there are cores (two on the CI and here)
    assert workers(one) == len(os.sched_getaffinity(0)) and workers({"num_threads": 10**6}) == 1

    def fit(without: tuple[int, ...]) -> OutcomeModel:
        keep = ~np.isin(fold, list(without))
        return OutcomeModel(features=features, **one).fit({k: v[keep] for k, v in data.items()})

    jobs: list[tuple[int, ...]] = [(0,), (1,), (0, 1), (2, 3), (1, 3)]
    side_by_side = parallel(fit, jobs, one)
    alone = [fit(job) for job in jobs]
    assert [m.booster_.model_to_string() for m in side_by_side] == [
        m.booster_.model_to_string() for m in alone]
    assert len({m.booster_.model_to_string() for m in alone}) == len(jobs)
    fits = CrossFit(data, fold, features, one)
    assert fits.outer[2].booster_.model_to_string() == fit((2,)).booster_.model_to_string()
    assert fits.pair(3, 0).booster_.model_to_string() == fit((0, 3)).booster_.model_to_string()


def test_codes_are_a_lookup_of_each_value() -> None:
    values = np.array(["b", None, "a", float("nan"), True, 1, "zz", "a", 0.0, False],
                      dtype=object)
    levels: list[object] = [False, True, "a", "b"]
    lookup = {v: float(i) for i, v in enumerate(levels)}
    expected = np.array([lookup.get(v, np.nan) for v in values.tolist()])
    assert np.array_equal(_codes(values, levels), expected, equal_nan=True)
    assert np.array_equal(_codes(np.array(["x", "y"], dtype=object), ["y"]),
                          [np.nan, 0.0], equal_nan=True)


def test_predictions_are_each_models_plain_predictions_of_its_rows() -> None:
    data = table(3000, seed=6)
    fold = case_folds(data["case_id"], 4, seed=1)
    features = ["hook", "shown", "prospect_interest", "step_index"]
    fits = CrossFit(data, fold, features, {"seed": 0, "n_estimators": 30})
    ids = ["video_b", "video_a", "unknown"]
    loo, nested = fits.predictions(data, fold, ids)

    def plain(model: OutcomeModel, rows: np.ndarray) -> np.ndarray:
        matrix = model._encode({k: v[rows] for k, v in data.items()})
        column = model.features_.index("shown")
        out = []
        for a in ids:  # every row, one action at a time, straight through LightGBM
            shown = matrix.copy()
            shown[:, column] = model._code("shown", a)
            out.append(model.booster_.predict(shown))
        return np.column_stack(out)

    for k in fits.folds:
        assert np.array_equal(loo[fold == k], plain(fits.outer[k], fold == k))
        assert not nested[k][fold == k].any()
        for j in fits.folds:
            if j != k:
                assert np.array_equal(nested[k][fold == j], plain(fits.pair(j, k), fold == j))
