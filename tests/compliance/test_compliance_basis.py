"""NM002: a required step's basis must give a reason; a placeholder is no basis."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance import audit


def _nm002(tmp_path: Path, basis: str | None) -> list[str]:
    line = "" if basis is None else f"    basis: {basis}\n"
    path = tmp_path / "basis.yaml"
    path.write_text("process: basis_check\nsteps:\n"
                    "  - id: disclose\n    name: Give the income disclosure\n"
                    f"    control: required\n{line}"
                    "  - id: contact_prospects\n    card: Reach out when it suits you.\n",
                    encoding="utf-8")
    return [f.message for f in audit([path]).findings if f.rule == "NM002"]


@pytest.mark.parametrize("basis", ["TODO", "tbd", "'-'", "n/a", "'...'", "TBD.", "N/A",
                                   "'TODO: find the law'", "none", "'?'"])
def test_a_placeholder_basis_is_flagged_like_a_missing_one(tmp_path: Path, basis: str) -> None:
    [message] = _nm002(tmp_path, basis)
    assert "gives no basis" in message and "placeholder" in message


def test_a_real_basis_or_none_at_all(tmp_path: Path) -> None:
    assert _nm002(tmp_path, "FTC Business Opportunity Rule, 16 CFR 437") == []
    assert _nm002(tmp_path, "《直销管理条例》第二十四条") == []  # not in Latin script
    [message] = _nm002(tmp_path, None)
    assert "gives no basis" in message and "placeholder" not in message
