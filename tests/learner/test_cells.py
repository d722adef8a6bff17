"""Predicting one row per group of rows the trees cannot tell apart gives the same numbers as
predicting every row; the shared factorization gives the same models; the segment search's
picks per cell are the per-row picks; the usable rows are those a lookup per row finds."""

from __future__ import annotations

import numpy as np

from content_catalog import ContentOption, Exploration, Policy, Rule, load_catalog_text
from learner import _cells
from learner._factorized import Factorized
from learner._hook import _explain, _matching
from learner._segments import (
    Segments,
    Shared,
    _alike,
    _text_levels_by_set,
    available,
    probabilities,
    take,
    text_levels,
)
from learner.model import OutcomeModel
from learner.rewrite import usable
from tests.learner.test_model import table
from tests.learner.test_rewrite import CATALOG


def _data(n: int, seed: int) -> dict[str, np.ndarray]:
    data = table(n, seed=seed)
    rng = np.random.default_rng(seed)
    hours = np.round(rng.exponential(20, n), 1)
    hours[rng.random(n) < 0.2] = 0.0  # zeros: LightGBM's Zero missing type looks at them
    hours[rng.random(n) < 0.05] = np.nan
    data["hours"] = hours
    data["tier"] = rng.choice(np.array(["gold", "silver", None], dtype=object), n)
    data["reward"] = ((rng.random(n) < 0.1 + 0.004 * np.nan_to_num(hours))
                      | (data["reward"] == 1)).astype(np.int8)
    return data


def test_predictions_and_contributions_by_cell_equal_every_rows() -> None:
    data = _data(4000, seed=3)
    model = OutcomeModel(features=["shown", "prospect_interest", "step_index", "hours", "tier"],
                         seed=0, params={"zero_as_missing": True}).fit(data)
    matrix = model._encode(data)
    one, group = _cells.cells(matrix, [model.features_.index(c) for c in model.categorical_],
                              _cells.cut_points(model.booster_))
    assert one.size < 0.8 * matrix.shape[0]  # rows do share cells
    assert np.array_equal(model._predict(matrix), model.booster_.predict(matrix))
    q = model.predict_actions(data, ["video_a", "video_b"])
    for k, a in enumerate(["video_a", "video_b"]):
        shown = matrix.copy()
        shown[:, model.features_.index("shown")] = model._code("shown", a)
        assert np.array_equal(q[:, k], model.booster_.predict(shown))
    assert np.array_equal(model.contribution_matrix(data),
                          model.booster_.predict(matrix, pred_contrib=True))


def test_fits_and_predictions_through_factorized_columns_are_the_same() -> None:
    data = _data(3000, seed=5)
    data["shown"][7] = None
    features = ["shown", "prospect_interest", "step_index", "hours", "tier"]
    codes = Factorized(data, features)
    assert "tier" in codes and "hours" not in codes
    keep = np.arange(3000) % 3 != 0
    part = {k: v[keep] for k, v in data.items()}
    plain = OutcomeModel(features=features, seed=0).fit(part)
    shared = OutcomeModel(features=features, seed=0).fit(part, codes=codes.take(keep))
    assert shared.categories_ == plain.categories_
    assert shared.booster_.model_to_string() == plain.booster_.model_to_string()
    assert np.array_equal(shared._encode(data, codes), plain._encode(data), equal_nan=True)
    assert np.array_equal(plain.predict_actions(data, ["video_b", "video_a"], codes=codes),
                          plain.predict_actions(data, ["video_b", "video_a"]))


def test_text_levels_are_those_of_a_set_of_the_values() -> None:
    columns = [np.array(["b", None, "a", "b"], dtype=object),
               np.array(["b", float("nan"), "a"], dtype=object),
               np.array([True, False, None], dtype=object),
               np.array(["a", "a"], dtype=object),
               np.array([f"v{i}" for i in range(20)], dtype=object)]
    for values in columns:
        fast, plain = text_levels(values, 12), _text_levels_by_set(values, 12)
        assert (fast is None) == (plain is None)
        if fast is not None and plain is not None:
            assert fast[0] == plain[0] and np.array_equal(fast[1], plain[1])


def test_picks_per_cell_are_the_per_row_argmax() -> None:
    rng = np.random.default_rng(2)
    n, k = 3000, 3
    data = {"tier": rng.choice(np.array(["gold", "silver", None], dtype=object), n),
            "region": rng.choice(np.array(["n", "s", "e"], dtype=object), n),
            "visits": rng.integers(0, 9, n).astype(np.float64)}
    avail = rng.random((n, k)) < 0.8
    gamma = np.where(avail, rng.random((n, k)), np.nan)
    fold = rng.integers(0, 4, n)
    seg = Segments(data, ["tier", "region", "visits"], 12, 20, gamma, avail, fold)
    # a fold's segments reuse what other folds found for text features; numeric bins not
    shared = Shared()
    Segments(data, ["tier", "region", "visits"], 12, 20, gamma, avail, fold, shared=shared)
    assert set(shared.text) == {"tier", "region"}
    fit = fold != 1
    other = np.where(avail, rng.random((n, k)), np.nan)
    reused = Segments(data, ["tier", "region", "visits"], 12, 20, other, avail, fold,
                      fit=fit, shared=shared)
    alone = Segments(data, ["tier", "region", "visits"], 12, 20, other, avail, fold, fit=fit)
    assert reused.levels == alone.levels and all(
        np.array_equal(reused.codes[f], alone.codes[f]) for f in alone.codes)
    for features in [("tier",), ("region", "tier"), ("visits", "tier")]:
        assert np.array_equal(reused.ids(features), alone.ids(features))
        assert np.array_equal(reused.picks(features, [0, 2], np.flatnonzero(fold == 3)),
                              alone.picks(features, [0, 2], np.flatnonzero(fold == 3)))
    assert ("region", "tier") in shared.ids and ("visits", "tier") not in shared.ids
    rows = np.flatnonzero(fold == 1)
    for features in [(), ("tier",), ("tier", "region"), ("region", "visits", "tier")]:
        scores = seg.assign(features, [0, 2, 3], rows)
        best = np.where(avail[rows] & np.isfinite(scores), scores, -np.inf).argmax(axis=1)
        assert np.array_equal(seg.picks(features, [0, 2, 3], rows), best)


def test_segment_means_are_those_of_each_segments_rows() -> None:
    rng = np.random.default_rng(4)
    n, k = 2000, 4
    data = {"tier": rng.choice(np.array(["gold", "silver", None], dtype=object), n),
            "region": rng.choice(np.array(["n", "s"], dtype=object), n)}
    avail = rng.random((n, k)) < 0.7
    gamma = np.where(avail, rng.random((n, k)), np.nan)
    fold = rng.integers(0, 3, n)
    seg = Segments(data, ["tier", "region"], 12, 20, gamma, avail, fold)
    for features in [(), ("tier",), ("region", "tier")]:
        support, means = seg.means(features, [0, 2])
        ids = seg.ids(features)
        for s in range(support.size):
            rows = (ids == s) & np.isin(fold, [0, 2])
            assert support[s] == rows.sum()
            for o in range(k):  # the mean of the option's scores where it was available:
                there = rows & avail[:, o]  # summed in row order per fold, then the folds
                total = np.array([np.bincount(np.zeros((there & (fold == f)).sum(), np.int64),
                                              gamma[there & (fold == f), o], 1)[0]
                                  for f in (0, 2)]).sum()
                expected = total / there.sum() if there.any() else np.nan
                assert np.array_equal(means[s, o], expected, equal_nan=True)


def test_availability_and_probabilities_by_distinct_context_are_those_of_every_row() -> None:
    rng = np.random.default_rng(7)
    n = 500
    table = {"shown": np.full(n, "a", dtype=object),
             "locale": rng.choice(np.array(["en", "de", None], dtype=object), n),
             "market": rng.choice(np.array(["US", "DE"], dtype=object), n),
             "tier": rng.choice(np.array(["gold", "silver", None], dtype=object), n)}
    options = [ContentOption("a", "a", None, "video", "A", None, None, 1.0, locale="en"),
               ContentOption("b", "b", None, "video", "B", None, None, 1.0, markets=("DE",))]
    policy = Policy("h", default={"a": 0.2, "b": 0.1},
                    rules=(Rule({"tier": "gold"}, {"b": 0.9, "a": 0.1}),),
                    exploration=Exploration("epsilon", 0.1))
    grouped = _alike([table["tier"], table["locale"], table["market"]])
    assert grouped is not None and grouped[0].size < 20
    for i in range(0, n, 50):  # one by one: no grouping below 64 rows
        row = {k: v[i:i + 1] for k, v in table.items()}
        assert np.array_equal(available(options, table)[i], available(options, row)[0])
        assert np.array_equal(probabilities(policy, options, table)[i],
                              probabilities(policy, options, row)[0])
    table["tier"][3] = float("nan")  # NaN is not None: the plain way
    assert _alike([table["tier"]]) is None


def test_usable_rows_are_those_a_set_lookup_per_row_finds() -> None:
    catalog = load_catalog_text(CATALOG)
    rng = np.random.default_rng(4)
    n = 500
    hooks = np.array(["intro_video", "first_contact_message", "no_such_hook", None],
                     dtype=object)
    shown = np.array(["video_a", "video_c", "note_x", "gone", None, float("nan")],
                     dtype=object)
    table = {"hook": rng.choice(hooks, n), "shown": rng.choice(shown, n),
             "propensity": rng.choice([0.0, 0.3, 1.0, 1.5, np.nan], n)}
    _, rows, known = usable(table, catalog)
    expected = [i for i in range(n) if table["shown"][i] in known.get(table["hook"][i], ())
                and 0 < table["propensity"][i] <= 1]
    assert rows.tolist() == expected and rows.size > 0


def test_one_explanation_call_gives_each_samples_own_numbers() -> None:
    data = _data(3000, seed=8)
    model = OutcomeModel(features=["shown", "prospect_interest", "step_index", "hours", "tier"],
                         seed=0).fit(data)
    policy = Policy("intro_video", default={"video_a": 0.2, "video_b": 0.1}, rules=(
        Rule({"tier": "gold"}, {"video_b": 0.4, "video_a": 0.1}),
        Rule({"prospect_interest": "energy"}, {"video_a": 0.3})))
    sample = np.random.default_rng(0).permutation(3000)[:500]
    mean_abs, explained = _explain(policy, model, data, sample, seed=0)
    alone = np.abs(model.contribution_matrix(take(data, sample))[:, :-1]).mean(axis=0)
    assert mean_abs == {f: round(float(v), 6) for f, v in sorted(
        zip(model.features_, alone, strict=True), key=lambda kv: -kv[1]) if v > 0}
    rng = np.random.default_rng(0)
    for rule, best in zip(explained.rules, ["video_b", "video_a"], strict=True):
        rows = rng.permutation(np.flatnonzero(_matching(data, rule.when)))[:500]
        part = take(data, rows)
        part["shown"] = np.full(rows.size, best, dtype=object)
        mean = model.contribution_matrix(part)[:, :-1].mean(axis=0)
        top = np.argsort(-np.abs(mean))[:3]
        assert rule.reasons[-1].endswith(", ".join(
            f"{model.features_[j]} {mean[j]:+.2f}" for j in top if mean[j] != 0))
