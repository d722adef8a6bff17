"""`bench.analytics` on a small database: every row and every part of funnel and stuck runs,
and the parts read what the whole views report (so a part timed alone is the real read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import analytics
from bench import _million
from bench import analytics as bench_analytics
from engine import Store


def test_the_parts_of_funnel_and_stuck_run_alone_and_agree_with_the_whole_views(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(_million, "CACHE", tmp_path / "cache")
    out = tmp_path / "analytics.json"
    parts = sorted(bench_analytics.PARTS)
    bench_analytics.main(["--instances", "300", "--distributors", "6", "--rounds", "1",
                          "--only", ",".join(["funnel", "stuck", *parts]), "--json", str(out)])
    rows = {row["name"]: row for row in json.loads(out.read_text())["rows"]}
    assert set(rows) == {"baseline", "funnel", "stuck", *parts}
    assert all(row["median_s"] > 0 for row in rows.values())

    store = Store(f"sqlite:///{_million.cached(300, 6, 0)}")
    try:
        whole = analytics.funnel(store, _million.JOURNEY)
        stuck = analytics.stuck(store, _million.JOURNEY, _million.NOW)
        assert rows["part:funnel.totals"]["result"] == str((whole.instances, whole.converted))
        assert rows["part:funnel.steps"]["result"] == f"{len(whole.steps)} rows"
        assert rows["part:stuck.open"]["result"] == f"{len(stuck.groups)} rows"
        assert whole.instances == 300 and stuck.instances > 0
    finally:
        store.dispose()
    assert "part:funnel.times" in capsys.readouterr().out


def test_an_unknown_row_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        bench_analytics.main(["--only", "funnel,part:nothing"])
    assert ended.value.code == 2
    assert "unknown row(s) part:nothing" in capsys.readouterr().err
