"""Nested cross-fitting's models are the same whether fitted one at a time or several at once,
categorical codes come out as a dict lookup of every value would give them, and the
folds' predictions are each model's plain predictions of its rows (those a hook reads:
options unavailable to a row are not predicted, and the proposals stay the same)."""

from __future__ import annotations

import json
import os

import lightgbm as lgb
import numpy as np
import pytest

from content_catalog import catalog_policy, load_catalog_text
from learner._crossfit import CrossFit, parallel, workers
from learner._segments import case_folds
from learner.model import OutcomeModel, _codes
from learner.rewrite import propose_from
from tests.learner.test_model import table
from tests.learner.test_rewrite import CATALOG, log


def test_fits_run_side_by_side_give_the_same_models() -> None:
    data = table(3000, seed=4)
    fold = case_folds(data["case_id"], 4, seed=0)
    features = ["hook", "shown", "prospect_interest", "step_index"]
    one = {"seed": 0, "num_threads": 1, "n_estimators": 30}
    # one thread each: as many at once as there are cores (two on the CI and here), and one
    # more to fill the gaps where a fit runs on one thread
    cores = len(os.sched_getaffinity(0))
    more = 1 if cores > 1 else 0
    assert workers(one) == cores + more and workers({"num_threads": 10**6}) == 1 + more

    def fit(without: tuple[int, ...]) -> OutcomeModel:
        keep = ~np.isin(fold, list(without))
        return OutcomeModel(features=features, **one).fit({k: v[keep] for k, v in data.items()})

    jobs: list[tuple[int, ...]] = [(0,), (1,), (0, 1), (2, 3), (1, 3)]
    side_by_side = parallel(fit, jobs, one)
    alone = [fit(job) for job in jobs]
    assert [m.booster_.model_to_string() for m in side_by_side] == [
        m.booster_.model_to_string() for m in alone]
    assert len({m.booster_.model_to_string() for m in alone}) == len(jobs)
    fits = CrossFit(data, fold, features, one, full=True)
    assert fits.outer[2].booster_.model_to_string() == fit((2,)).booster_.model_to_string()
    assert fits.pair(3, 0).booster_.model_to_string() == fit((0, 3)).booster_.model_to_string()
    # the model on every row, fitted beside them, is the one fitted on the table alone
    alone_full = OutcomeModel(features=features, **one).fit(data)
    assert fits.full is not None
    assert fits.full.booster_.model_to_string() == alone_full.booster_.model_to_string()
    assert CrossFit(data, fold, features, one).full is None


def test_codes_are_a_lookup_of_each_value() -> None:
    values = np.array(["b", None, "a", float("nan"), True, 1, "zz", "a", 0.0, False],
                      dtype=object)
    levels: list[object] = [False, True, "a", "b"]
    lookup = {v: float(i) for i, v in enumerate(levels)}
    expected = np.array([lookup.get(v, np.nan) for v in values.tolist()])
    assert np.array_equal(_codes(values, levels), expected, equal_nan=True)
    assert np.array_equal(_codes(np.array(["x", "y"], dtype=object), ["y"]),
                          [np.nan, 0.0], equal_nan=True)


IDS = ["video_b", "video_a", "unknown"]


def small_fits(seed: int, fold_seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, CrossFit]:
    """A 3,000-row table, its four case folds and the fold models fitted on them."""
    data = table(3000, seed=seed)
    fold = case_folds(data["case_id"], 4, seed=fold_seed)
    features = ["hook", "shown", "prospect_interest", "step_index"]
    return data, fold, CrossFit(data, fold, features, {"seed": 0, "n_estimators": 30})


def test_predictions_are_each_models_plain_predictions_of_its_rows() -> None:
    data, fold, fits = small_fits(6, 1)
    ids = IDS
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


def test_predictions_skip_only_what_no_row_of_a_cell_needs() -> None:
    data, fold, fits = small_fits(7, 2)
    ids = IDS
    needed = np.random.default_rng(3).random((3000, 3)) < 0.3
    needed[:, 2] = False  # an option no row needs: never predicted
    loo, nested = fits.predictions(data, fold, ids, needed=needed)
    full_loo, full_nested = fits.predictions(data, fold, ids)
    assert np.array_equal(loo[needed], full_loo[needed])
    assert not loo[:, 2].any() and full_loo[:, 2].all()
    for k in fits.folds:
        outside = (fold != k)[:, None] & needed
        assert np.array_equal(nested[k][outside], full_nested[k][outside])
        assert not nested[k][:, 2].any()


def test_proposals_are_the_same_with_unavailable_options_left_unpredicted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # video_c only in Mexico, yet logged in the US too (an old log): the logged option's q
    # is still read by the DR correction, the unavailable ones' never
    catalog = load_catalog_text(CATALOG.replace("weight: 0.6}", "weight: 0.6, markets: [MX]}"))
    data = log(1500, seed=5)
    data["market"][::3] = "MX"
    elsewhere = np.flatnonzero((data["market"] != "MX") & (data["shown"] == "video_c"))
    data["shown"][elsewhere[1:]] = "video_a"
    active = {h: catalog_policy(catalog, h) for h in catalog.hooks}

    def proposal() -> str:
        found = propose_from(data, catalog, active, process_id="journey", outcome="sale",
                             n_boot=50)
        return json.dumps(found.to_dict(), sort_keys=True)

    predicted: list[int] = []
    plain_predict = lgb.Booster.predict

    def counting(self: lgb.Booster, data: np.ndarray, *args: object, **kw: object) -> object:
        predicted.append(len(data))
        return plain_predict(self, data, *args, **kw)

    monkeypatch.setattr(lgb.Booster, "predict", counting)
    skipping = proposal()
    skipped = sum(predicted)
    plain = CrossFit.predictions
    monkeypatch.setattr(CrossFit, "predictions", lambda self, table, fold, ids, needed=None:
                        plain(self, table, fold, ids))
    predicted.clear()
    assert proposal() == skipping
    assert skipped < sum(predicted)
