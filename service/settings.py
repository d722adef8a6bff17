"""The server's configuration: flags of `nextmove serve`, else environment variables.

    NEXTMOVE_DB                    database (SQLite file or postgresql:// URL); ./nextmove.db
    NEXTMOVE_HOST / NEXTMOVE_PORT  where to listen (127.0.0.1:8080)
    NEXTMOVE_WORKERS               worker processes (1; more only on PostgreSQL)
    NEXTMOVE_WEBHOOK_SECRETS       a JSON file {"source": "secret", ...} of webhook secrets
    NEXTMOVE_WEBHOOK_SECRET_<SRC>  one source's secret (e.g. NEXTMOVE_WEBHOOK_SECRET_VIMEO)
    NEXTMOVE_WEBHOOK_WINDOW        seconds a signed event stays acceptable (300)
    NEXTMOVE_SECURE_COOKIES        1/0: mark the card page's cookie Secure (default: on unless
                                   the server listens on a loopback address)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine import NextmoveError

SECRET_PREFIX = "NEXTMOVE_WEBHOOK_SECRET_"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Settings:
    db: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    webhook_secrets: Mapping[str, str] = field(default_factory=dict)
    webhook_window: int = 300
    secure_cookies: bool | None = None  # None: on unless host is a loopback address

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.host not in LOOPBACK

    def environment(self) -> dict[str, str]:
        """These settings as environment variables (for worker processes to read back)."""
        env = {"NEXTMOVE_HOST": self.host, "NEXTMOVE_PORT": str(self.port),
               "NEXTMOVE_WORKERS": str(self.workers),
               "NEXTMOVE_WEBHOOK_WINDOW": str(self.webhook_window)}
        if self.db:
            env["NEXTMOVE_DB"] = self.db
        if self.secure_cookies is not None:
            env["NEXTMOVE_SECURE_COOKIES"] = "1" if self.secure_cookies else "0"
        env.update({SECRET_PREFIX + k.upper(): v for k, v in self.webhook_secrets.items()})
        return env


def webhook_secrets(file: str | None, env: Mapping[str, str]) -> dict[str, str]:
    """Per-source secrets from a JSON file and from NEXTMOVE_WEBHOOK_SECRET_<SOURCE>
    variables (source names are lower-cased)."""
    found: dict[str, str] = {}
    if file:
        try:
            data = json.loads(Path(file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NextmoveError(f"webhook secrets file {file}: {exc}") from exc
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()):
            raise NextmoveError(f"webhook secrets file {file} must be a JSON object "
                                '{"source": "secret", ...}')
        found.update({k.lower(): v for k, v in data.items()})
    for name, value in env.items():
        if name.startswith(SECRET_PREFIX) and value:
            found[name.removeprefix(SECRET_PREFIX).lower()] = value
    short = [s for s, v in found.items() if len(v) < 16]
    if short:
        raise NextmoveError(f"webhook secret(s) for {', '.join(sorted(short))} are shorter "
                            "than 16 characters")
    return found


def from_environment(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    secure = env.get("NEXTMOVE_SECURE_COOKIES")
    try:
        return Settings(
            db=env.get("NEXTMOVE_DB") or None,
            host=env.get("NEXTMOVE_HOST", "127.0.0.1"),
            port=int(env.get("NEXTMOVE_PORT", "8080")),
            workers=int(env.get("NEXTMOVE_WORKERS", "1")),
            webhook_secrets=webhook_secrets(env.get("NEXTMOVE_WEBHOOK_SECRETS"), env),
            webhook_window=int(env.get("NEXTMOVE_WEBHOOK_WINDOW", "300")),
            secure_cookies=None if secure is None else secure not in ("0", "false", "no"),
        )
    except ValueError as exc:
        raise NextmoveError(f"bad server setting: {exc}") from exc
