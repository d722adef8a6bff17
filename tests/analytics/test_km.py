"""Kaplan–Meier, Greenwood and log-rank against textbook values: the Freireich et al. (1963)
leukaemia remission data (6-MP vs placebo), as in Kleinbaum & Klein, *Survival Analysis*,
ch. 2, and R's `survival` package (`survfit`, `survdiff`)."""

from __future__ import annotations

import math

import pytest

from analytics._km import kaplan_meier, logrank, median_time, survival_at

# weeks in remission; a trailing "+" would mark censoring: (time, relapsed)
SIX_MP = [(6, True), (6, True), (6, True), (6, False), (7, True), (9, False), (10, True),
          (10, False), (11, False), (13, True), (16, True), (17, False), (19, False),
          (20, False), (22, True), (23, True), (25, False), (32, False), (32, False),
          (34, False), (35, False)]
PLACEBO = [(t, True) for t in (1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17,
                               22, 23)]


def _split(rows: list[tuple[int, bool]]) -> tuple[list[float], list[bool]]:
    return [float(t) for t, _ in rows], [e for _, e in rows]


def test_kaplan_meier_and_greenwood_match_the_textbook() -> None:
    steps = kaplan_meier(*_split(SIX_MP))
    # (time, at risk, relapses, S(t), Greenwood s.e.) from Kleinbaum & Klein table 2.x / survfit
    expected = [(6, 21, 3, 0.8571, 0.0764), (7, 17, 1, 0.8067, 0.0869),
                (10, 15, 1, 0.7529, 0.0963), (13, 12, 1, 0.6902, 0.1068),
                (16, 11, 1, 0.6275, 0.1141), (22, 7, 1, 0.5378, 0.1282),
                (23, 6, 1, 0.4482, 0.1346)]
    got = [(s.time, s.at_risk, s.events, round(s.survival, 4), round(s.se, 4))
           for s in steps if s.events]
    assert got == expected
    assert median_time(steps) == 23.0
    assert survival_at(steps, 12.5) is not None and survival_at(steps, 12.5).time == 11.0
    assert survival_at(steps, 0.5) is None
    # survfit(conf.type = "log-log") at t = 6: 0.620, 0.952
    six = steps[0]
    assert (round(six.lower, 3), round(six.upper, 3)) == (0.620, 0.952)
    placebo = kaplan_meier(*_split(PLACEBO))
    assert median_time(placebo) == 8.0
    assert placebo[-1].survival == 0.0 and (placebo[-1].lower, placebo[-1].upper) == (0.0, 0.0)


def test_log_rank_matches_survdiff() -> None:
    # survdiff(Surv(time, status) ~ group): Chisq = 16.8 on 1 df, p = 4e-05; O = 9 and 21,
    # E = 19.25 and 10.75
    found = logrank([_split(SIX_MP), _split(PLACEBO)])
    assert found is not None
    assert round(found.chi2, 2) == 16.79 and found.df == 1
    assert found.p == pytest.approx(4.17e-5, rel=0.01)
    assert found.observed == (9, 21)
    assert [round(e, 2) for e in found.expected] == [19.25, 10.75]


def test_log_rank_three_groups_and_degenerate_cases() -> None:
    third = [(t, True) for t in (3, 5, 7, 9, 11, 13, 15)]
    found = logrank([_split(SIX_MP), _split(PLACEBO), _split(third)])
    assert found is not None and found.df == 2 and 0 <= found.p < 0.001
    assert logrank([_split(SIX_MP)]) is None
    assert logrank([([1.0, 2.0], [False, False]), ([3.0], [False])]) is None
    same = logrank([_split(PLACEBO), _split(PLACEBO)])
    assert same is not None and math.isclose(same.chi2, 0.0, abs_tol=1e-12) and same.p == 1.0


def test_no_event_yet_gives_the_exact_bound_not_a_zero_width_band() -> None:
    # 0 of 3 and 0 of 1 sold: Greenwood's variance is 0, but 0 of 3 does not prove a rate of 0
    [step] = kaplan_meier([14.0, 14.0, 14.0], [False, False, False])
    assert step.survival == 1.0 and step.upper == 1.0
    assert step.lower == pytest.approx(0.025 ** (1 / 3))  # share with a sale: up to 70.8%
    [one] = kaplan_meier([14.0], [False])
    assert one.lower == pytest.approx(0.025)
