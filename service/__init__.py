"""nextmove over HTTP: `nextmove serve` (FastAPI + uvicorn).

    from service import create_app, Settings
    app = create_app(Settings(db="postgresql://..."))   # opens its engine when it starts

    create_app       the application: maps, instances, cards, outcomes, analytics, the trail,
                     learning and policies, signed prospect events, the card page
    Settings         configuration (flags of `nextmove serve`, else NEXTMOVE_* variables)
    create_token, revoke_token, list_tokens    API tokens, stored hashed (`nextmove token`)
    Role             designer, integrator, distributor, sponsor, lead, reviewer, admin
    signature        how a webhook sender signs an event

Pieces: `roles` (who may do what, a sponsor's downline), `tokens`, `problems` (errors as
RFC 9457 Problem Details: the one mapping from nextmove's errors to HTTP statuses),
`idempotency` (Idempotency-Key), `_strict` (a body field or query parameter a route does
not take is refused), `webhooks`, `page` (the card page, Jinja2 templates),
`routes_*` (the API), `app` (assembly, request logs, health).
"""

from service._tables import prepare as prepare_tables
from service.app import create_app
from service.roles import ROLES, Principal, Role
from service.settings import Settings, from_environment
from service.tokens import NewToken, TokenInfo, create_token, list_tokens, revoke_token
from service.webhooks import signature

__all__ = [
    "ROLES",
    "NewToken",
    "Principal",
    "Role",
    "Settings",
    "TokenInfo",
    "create_app",
    "create_token",
    "from_environment",
    "list_tokens",
    "prepare_tables",
    "revoke_token",
    "signature",
]
