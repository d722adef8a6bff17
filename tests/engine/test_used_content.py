"""`used` names content the step offers: a mistyped option id is refused with nothing written
(it would be logged as other content the person chose, counted so by the audit trail and
learned from as a decision). SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from engine import Engine, ProspectRef, UnknownContent
from tests.conftest import REPO

US = {"market": "US", "locale": "en-US"}
P1 = ProspectRef("p1")


@pytest.fixture(autouse=True)
def p1(lv: Engine) -> None:
    """LifeVantage (`lv`: tests/engine/conftest.py) with one prospect at its first step."""
    lv.start("prospect_journey", "p1", "d1", US, actor="d1")


def card(lv: Engine, step: str) -> list[str]:
    (found,) = [c for c in lv.cards("d1") if c.step_id == step]
    return [s.option_id for s in found.content]


def test_a_mistyped_option_is_refused_and_nothing_is_written(lv: Engine) -> None:
    offered = card(lv, "add_contact")
    before = lv.history(P1)
    typo = offered[0][:-1] + "x"
    with pytest.raises(UnknownContent) as refused:
        lv.complete(P1, "add_contact", actor="d1", used=typo)
    message = str(refused.value)
    assert f"offers no content {typo!r} (did you mean '{offered[0]}'?)" in message
    assert "nothing was recorded" in message and all(o in message for o in offered)
    assert lv.history(P1) == before
    with pytest.raises(UnknownContent):
        lv.vary(P1, "add_contact", "met at the gym", actor="d1", used="not-an-option")
    assert lv.history(P1) == before


def test_the_cards_suggestion_and_any_other_option_of_the_hook_are_taken(lv: Engine) -> None:
    offered = card(lv, "add_contact")
    assert len(offered) > 1
    lv.complete(P1, "add_contact", actor="d1", used=offered[-1])
    (done,) = [e for e in lv.history(P1) if (e.step_id, e.kind) == ("add_contact", "completed")]
    assert done.content_used == offered[-1]
    # an option of the hook the card did not rank (another market's) is still the hook's own
    catalog = lv.recommender.catalog  # type: ignore[union-attr]
    hook = lv.history(P1)[-1].hook
    assert hook is not None
    everywhere = [o.id for o in catalog.options_for(hook)]
    elsewhere = [o for o in everywhere if o not in card(lv, "share_intro")]
    assert elsewhere, "the catalog has content for this hook outside the US"
    lv.complete(P1, "share_intro", actor="d1", used=elsewhere[0])


def test_content_of_another_hook_is_refused(lv: Engine) -> None:
    other_hook = card(lv, "add_contact")[0]
    lv.complete(P1, "add_contact", actor="d1")
    with pytest.raises(UnknownContent, match="'share_intro'.*offers no content"):
        lv.complete(P1, "share_intro", actor="d1", used=other_hook)


def test_a_step_without_a_hook_takes_no_used_content(lv: Engine) -> None:
    lv.deploy([REPO / "tests" / "fixtures" / "yaml" / "linear.yaml"])  # no hooks at all
    lv.start("linear", "p2", "d1", US, actor="d1")
    plain = ProspectRef("p2", "linear")
    with pytest.raises(UnknownContent, match="step 'one' has no content hook"):
        lv.complete(plain, "one", actor="d1", used="anything")
    assert [e.kind for e in lv.history(plain) if e.step_id == "one"] == ["entered"]
    lv.complete(plain, "one", actor="d1")
