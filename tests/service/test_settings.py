"""Server settings: webhook secrets from a file and from variables, refused when unusable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import NextmoveError
from service.settings import from_environment, webhook_secrets


def test_secrets_come_from_a_file_and_from_variables(tmp_path: Path) -> None:
    file = tmp_path / "secrets.json"
    file.write_text(json.dumps({"Vimeo": "a" * 20, "shop": "b" * 20}), encoding="utf-8")
    found = webhook_secrets(str(file), {"NEXTMOVE_WEBHOOK_SECRET_SHOP": "c" * 20})
    assert found == {"vimeo": "a" * 20, "shop": "c" * 20}  # a variable overrides the file
    settings = from_environment({"NEXTMOVE_WEBHOOK_SECRETS": str(file), "NEXTMOVE_PORT": "9"})
    assert settings.port == 9 and settings.webhook_secrets["vimeo"] == "a" * 20
    assert from_environment(settings.environment()).webhook_secrets == settings.webhook_secrets


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "must be a JSON object"),
    ('{"vimeo": "short"}', "shorter than 16"),
    ("not json", "webhook secrets file"),
])
def test_unusable_secrets_are_refused(tmp_path: Path, content: str, message: str) -> None:
    file = tmp_path / "secrets.json"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(NextmoveError, match=message):
        webhook_secrets(str(file), {})


def test_cookies_are_secure_unless_on_loopback() -> None:
    assert not from_environment({}).cookies_secure
    assert from_environment({"NEXTMOVE_HOST": "0.0.0.0"}).cookies_secure
    assert not from_environment({"NEXTMOVE_HOST": "0.0.0.0",
                                 "NEXTMOVE_SECURE_COOKIES": "0"}).cookies_secure
