"""Keyset paging of a distributor's cards (`GET /cards?after=`), on SQLite and PostgreSQL
against a real server: while cards are done and added between pages, every card that stayed
put is seen exactly once and none is seen twice (an offset would skip the cards that slid
into the pages already read)."""

from __future__ import annotations

from datetime import timedelta

from engine.runtime import NewProspect
from tests.service._server import Running
from tests.service._world import PROCESS

Key = tuple[int, str]


def _start(run: Running, names: list[str]) -> None:
    run.engine.start_many(PROCESS, [NewProspect(n, "d1", {}) for n in names], new=True)


def test_pages_cover_every_card_once_while_cards_change(api: Running) -> None:
    run = api
    _start(run, [f"a{n:02}" for n in range(12)])
    run.clock.advance(timedelta(hours=1))  # a second, later group of follow-ups
    _start(run, [f"b{n:02}" for n in range(12)])
    before = [(c.instance_id, c.step_id) for c in run.engine.cards("d1", limit=500)]
    assert len(before) == len(set(before)) == 24
    d1 = run.client("distributor")
    seen: list[Key] = []
    touched: set[int] = set()
    after: str | None = None
    for page in range(40):
        answer = d1.get("/cards", params={"limit": 5, **({"after": after} if after else {})})
        assert answer.status_code == 200, answer.text
        cards = answer.json()
        seen += [(c["instance_id"], c["step_id"]) for c in cards]
        after = answer.headers.get("next-cursor")
        if after is None:
            assert "link" not in answer.headers
            break
        assert answer.headers["link"] == f'</cards?limit=5&after={after}>; rel="next"'
        # Between pages: do the first card just read (its instance moves on to a next card),
        # do a card not read yet, start two new prospects.
        done = cards[0]
        run.engine.complete(done["instance_id"], done["step_id"], actor="d1")
        touched.add(done["instance_id"])
        unread = next((k for k in reversed(before) if k not in seen and k[0] not in touched),
                      None)
        if unread is not None:
            run.engine.complete(unread[0], unread[1], actor="d1")
            touched.add(unread[0])
        _start(run, [f"c{page:02}a", f"c{page:02}b"])
    else:
        raise AssertionError("the pages never ended")
    assert len(seen) == len(set(seen)), "a card was shown twice"
    stayed = [k for k in before if k[0] not in touched]
    assert len(stayed) >= 10
    missed = [k for k in stayed if k not in seen]
    assert not missed, f"cards that stayed put were skipped: {missed}"


def test_a_bad_cursor_is_refused(api: Running) -> None:
    answer = api.client("distributor").get("/cards", params={"after": "x.y"})
    assert answer.status_code == 422
    assert answer.json()["type"].endswith("/invalid-input")


def test_rows_without_a_card_for_the_caller_make_no_empty_pages(api: Running) -> None:
    run = api

    def downline(names: list[str]) -> None:  # s1 sponsors d1: rows of s1's with no card
        run.engine.start_many(PROCESS, [NewProspect(n, "d1", {"sponsor_id": "s1"})
                                        for n in names], new=True)

    downline(["a1", "a2", "a3"])
    run.engine.start(PROCESS, "own-1", "s1", {}, new=True)
    downline(["b1", "b2", "b3", "b4"])
    run.engine.start(PROCESS, "own-2", "s1", {}, new=True)
    downline(["c1", "c2", "c3", "c4"])
    s1 = run.client("sponsor")
    pages: list[list[str]] = []
    after: str | None = None
    while len(pages) < 12:
        answer = s1.get("/cards", params={"limit": 1, **({"after": after} if after else {})})
        assert answer.status_code == 200, answer.text
        pages.append([c["prospect_id"] for c in answer.json()])
        after = answer.headers.get("next-cursor")
        if after is None:
            break
    assert pages == [["own-1"], ["own-2"]]  # a cursor only when a card follows
    run.engine.start_many(PROCESS, [NewProspect(f"x{n}", "d7", {"sponsor_id": "s7"})
                                    for n in range(5)], new=True)
    empty = run.client(token=run.token("sponsor", "s7")).get("/cards", params={"limit": 1})
    assert empty.json() == [] and "next-cursor" not in empty.headers
