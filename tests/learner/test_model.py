"""The outcome model on synthetic decision tables whose true response is known."""

from __future__ import annotations

import numpy as np
import pytest

from learner.model import BIAS, OutcomeModel, as_columns, identifying


def table(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Decisions where the best content depends on the prospect's interest, and names are noise.

    P(reward) = 0.5 when `shown` matches the interest (video_a for energy, video_b for skin
    care), else 0.1; `step_index` adds nothing.
    """
    rng = np.random.default_rng(seed)
    interest = rng.choice(["energy", "skin_care"], n).astype(object)
    shown = rng.choice(["video_a", "video_b"], n).astype(object)
    match = ((interest == "energy") & (shown == "video_a")) | (
        (interest == "skin_care") & (shown == "video_b"))
    reward = (rng.random(n) < np.where(match, 0.5, 0.1)).astype(np.int8)
    return {
        "case_id": np.array([f"p{i}" for i in range(n)], dtype=object),
        "hook": np.full(n, "intro_video", dtype=object),
        "shown": shown,
        "prospect_interest": interest,
        "prospect_first_name": np.array([f"name{i % 500}" for i in range(n)], dtype=object),
        "step_index": rng.integers(0, 5, n),
        "propensity": np.full(n, 0.5),
        "reward": reward,
    }


def test_learns_the_interaction_of_content_and_context() -> None:
    model = OutcomeModel(seed=1).fit(table(4000))
    q = model.predict_actions({k: v[:2] for k, v in table(2, seed=9).items()} | {
        "prospect_interest": np.array(["energy", "skin_care"], dtype=object)},
        ["video_a", "video_b"])
    assert q[0, 0] > q[0, 1] + 0.2  # energy: video_a
    assert q[1, 1] > q[1, 0] + 0.2  # skin care: video_b
    assert q[0, 0] == pytest.approx(0.5, abs=0.08)
    assert q[0, 1] == pytest.approx(0.1, abs=0.06)


def test_features_ids_and_bookkeeping_columns() -> None:
    model = OutcomeModel().fit(table(500))
    assert "case_id" not in model.features_ and "propensity" not in model.features_
    assert "reward" not in model.features_
    assert model.dropped_features_ == ["prospect_first_name"]  # 500 names: an identifier
    assert set(model.categorical_) == {"hook", "shown", "prospect_interest"}
    assert model.categories_["shown"] == ["video_a", "video_b"]
    assert "step_index" in model.features_ and "step_index" not in model.categorical_
    assert set(model.feature_importances_) == set(model.features_)
    assert model.n_features_in_ == len(model.features_)


def test_columns_that_identify_a_person_are_never_features() -> None:
    """Even with few distinct values (a small team), names and ids are dropped: no policy may
    target people by who they are."""
    data = table(2000)
    few = np.array([f"name{i % 3}" for i in range(2000)], dtype=object)
    data |= {"prospect_first_name": few, "context.sponsor_id": few.copy(),
             "email": few.copy(), "context.market": np.full(2000, "US", dtype=object)}
    model = OutcomeModel().fit(data)
    assert set(model.dropped_features_) == {"prospect_first_name", "context.sponsor_id", "email"}
    assert "context.market" in model.features_ and "hook" in model.features_
    assert identifying("context.prospect_first_name") and identifying("sponsor_id")
    assert not identifying("prospect_interest") and not identifying("distributor_personality")
    assert not identifying("context.video_watched")


def test_fit_returns_self_and_is_deterministic() -> None:
    data = table(1500, seed=2)
    a = OutcomeModel(seed=3)
    assert a.fit(data) is a
    b = OutcomeModel(seed=3).fit(data)
    np.testing.assert_array_equal(a.predict_proba(data), b.predict_proba(data))
    assert a.booster_.model_to_string() == b.booster_.model_to_string()
    assert a.get_params()["seed"] == 3
    assert OutcomeModel().set_params(seed=4).seed == 4
    with pytest.raises(ValueError, match="unknown parameter"):
        OutcomeModel().set_params(sed=4)


def test_contributions_explain_each_prediction() -> None:
    data = table(3000, seed=4)
    model = OutcomeModel(seed=0).fit(data)
    rows = {k: v[:20] for k, v in data.items()}
    contributions = model.contributions(rows)
    p = model.predict_proba(rows)[:, 1]
    for entry, prob in zip(contributions, p, strict=True):
        assert BIAS in entry
        log_odds = sum(entry.values())
        assert 1 / (1 + np.exp(-log_odds)) == pytest.approx(prob, abs=1e-9)
        ranked = [abs(v) for k, v in entry.items() if k != BIAS]
        assert ranked == sorted(ranked, reverse=True)
        # The content and the interest explain the prediction, not the step index.
        top_two = [k for k in entry if k != BIAS][:2]
        assert set(top_two) == {"shown", "prospect_interest"}


def test_unseen_and_missing_values_go_to_the_missing_branch() -> None:
    model = OutcomeModel().fit(table(800))
    rows = {"hook": ["intro_video", "intro_video"], "shown": ["video_c", None],
            "prospect_interest": ["energy", None], "step_index": [1, None]}
    p = model.predict_proba(rows)[:, 1]
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))


def test_tables_as_rows_and_as_objects_with_columns() -> None:
    data = table(300)
    rows = [{k: v[i] for k, v in data.items()} for i in range(300)]
    by_rows = OutcomeModel().fit(rows)
    by_columns = OutcomeModel().fit(data)
    np.testing.assert_allclose(by_rows.predict_proba(rows), by_columns.predict_proba(data))

    class Table:
        columns = data

    assert set(as_columns(Table())) == set(data)
    with pytest.raises(ValueError, match="differ in length"):
        as_columns({"a": [1, 2], "b": [1]})


def test_errors() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        OutcomeModel().predict_proba(table(5))
    bad = table(10) | {"reward": np.full(10, 2)}
    with pytest.raises(ValueError, match="0 or 1"):
        OutcomeModel().fit(bad)
    with pytest.raises(ValueError, match="no column"):
        OutcomeModel(features=["nope"]).fit(table(10))
