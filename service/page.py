"""The card page: a distributor's action cards on their phone, server-rendered.

Signing in: the login form takes the distributor's token, or a sign-in link does — a
single-use code valid for five minutes that the brand's app asks for with the token
(`POST /me/sign-in-link`) and opens in the phone's browser, so the token itself never
travels in a URL. Either way the browser gets a token of its own in an HttpOnly,
SameSite=Strict cookie (Secure unless the server listens on loopback), which signing out
revokes. Every form carries a CSRF token derived from the cookie (an HMAC only the
cookie's holder can compute) and the POST also checks Origin. A tap is allowed as the
API's steps are (`require_step`)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select, update
from starlette.concurrency import run_in_threadpool

from engine import Engine, NextmoveError
from engine.clock import as_utc
from engine.runtime.cards import ActionCard
from service._deps import EngineDep, SettingsDep, caller, forbidden, require_step
from service._tables import API_TOKEN, SIGN_IN_LINK
from service.problems import Problem, classify
from service.roles import Principal, Role
from service.tokens import authenticate, create_token, digest, revoke_token

router = APIRouter(tags=["card page"])
templates = Jinja2Templates(directory=str(files("service") / "templates"))
COOKIE = "nextmove_session"
LINK_LIFE = timedelta(minutes=5)
PAGE_ROLES = (Role.DISTRIBUTOR, Role.SPONSOR)
PAGE_SIZE = 20  # cards drawn per page: a page's rendering cost stays bounded
_LEFT_OVER = re.compile(r"\{[a-z_][a-z0-9_]*\}")


def csrf_token(session: str) -> str:
    return hmac.new(session.encode(), b"nextmove-csrf", hashlib.sha256).hexdigest()[:32]


def fill_gaps(message: str | None) -> str | None:
    """The suggested message with placeholders that had no data removed, never shown raw."""
    if not message:
        return message
    text = _LEFT_OVER.sub("", message)
    return re.sub(r"[ \t]{2,}", " ", re.sub(r" +([,.!?:;])", r"\1", text)).strip()


def _login(request: Request, error: str | None = None, status: int = 200) -> Response:
    return templates.TemplateResponse(request, "login.html", {"error": error},
                                      status_code=status)


def _signed_in(settings: Any, token: str) -> Response:
    response = RedirectResponse("/me/cards", status_code=303)
    response.set_cookie(COOKIE, token, max_age=30 * 86400, httponly=True, samesite="strict",
                        secure=settings.cookies_secure, path="/")
    return response


@router.get("/login", response_class=HTMLResponse, summary="The card page's sign-in form")
def login_form(request: Request) -> Response:
    return _login(request)


@router.post("/login", response_class=HTMLResponse, summary="Sign in to the card page")
def login(request: Request, engine: EngineDep, settings: SettingsDep,
          token: Annotated[str, Form()]) -> Response:
    who = authenticate(engine.store, token.strip())
    if who is None or who.role not in PAGE_ROLES:
        return _login(request, "That access token is not valid for the card page.", 401)
    # The browser gets a token of its own, so signing out can revoke it and not the one typed.
    session = create_token(engine.store, who.role, who.subject, engine.clock)
    return _signed_in(settings, session.token)


@router.post("/logout", summary="Sign out of the card page (its session token is revoked)")
def logout(request: Request, engine: EngineDep) -> Response:
    token = request.cookies.get(COOKIE)
    who = authenticate(engine.store, token) if token else None
    if who is not None:  # a copied cookie must not outlive the sign-out
        revoke_token(engine.store, who.token_id, engine.clock)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/me/sign-in-link", summary="A single-use link that signs a phone in "
             "(valid five minutes)")
def sign_in_link(engine: EngineDep, who: Annotated[Principal, Depends(caller)]
                 ) -> dict[str, str]:
    if who.role not in PAGE_ROLES:
        raise forbidden(who, "sign-in links (they are for distributors and sponsors)")
    code = secrets.token_urlsafe(24)
    expires = engine.clock.now() + LINK_LIFE
    with engine.store.write() as conn:
        conn.execute(SIGN_IN_LINK.insert().values(code_hash=digest(code), token_id=who.token_id,
                                                  expires_at=expires))
    return {"path": f"/sign-in/{code}", "expires_at": as_utc(expires).isoformat()}


@router.get("/sign-in/{code}", summary="Use a sign-in link (once)")
def use_sign_in_link(code: str, request: Request, engine: EngineDep,
                     settings: SettingsDep) -> Response:
    now = engine.clock.now()
    with engine.store.write() as conn:
        used = conn.execute(update(SIGN_IN_LINK).where(
            SIGN_IN_LINK.c.code_hash == digest(code), SIGN_IN_LINK.c.used_at.is_(None),
            SIGN_IN_LINK.c.expires_at > now).values(used_at=now).returning(
            SIGN_IN_LINK.c.token_id)).first()
        owner = None if used is None else conn.execute(
            select(API_TOKEN.c.role, API_TOKEN.c.subject).where(
                API_TOKEN.c.id == used.token_id, API_TOKEN.c.revoked_at.is_(None))).first()
    if owner is None:
        return _login(request, "That sign-in link has expired or was already used.", 401)
    # The browser gets a token of its own, revocable on its own (`nextmove token list`).
    session = create_token(engine.store, owner.role, owner.subject, engine.clock)
    return _signed_in(settings, session.token)


def _session(request: Request, engine: Engine) -> tuple[Principal, str] | None:
    token = request.cookies.get(COOKIE)
    who = authenticate(engine.store, token) if token else None
    if who is None or token is None or who.role not in PAGE_ROLES:
        return None
    request.state.subject = who.subject
    return who, token


def _card_view(card: ActionCard) -> dict[str, Any]:
    top = next((s for s in card.content if s.top), None)
    return {"card": card, "message": fill_gaps(card.suggested_message), "top": top,
            "others": [s for s in card.content if not s.top],
            "asks": {k: v for k, v in (card.asks or {}).items() if isinstance(v, list)}}


@router.get("/me/cards", response_class=HTMLResponse,
            summary="The signed-in distributor's action cards, as a page")
def cards_page(request: Request, engine: EngineDep, done: str | None = None,
               problem: str | None = None,
               after: Annotated[str | None, Query(max_length=64, description=(
                   "The page cursor of a More cards link (keyset paging)"))] = None,
               ) -> Response:
    """About PAGE_SIZE cards after the cursor `after`, most urgent first (keyset paging)."""
    found = _session(request, engine)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    who, token = found
    found_cards, next_page = engine.cards_page(who.subject, size=PAGE_SIZE, after=after)
    cards = [_card_view(c) for c in found_cards]
    return templates.TemplateResponse(request, "cards.html", {
        "who": who, "cards": cards, "csrf": csrf_token(token), "done": done,
        "problem": problem, "now": engine.clock.now(), "later": after is not None,
        "next": next_page, "drift": _drift_alerts(engine, who, found_cards)})


def _drift_alerts(engine: Engine, who: Principal, cards: list[ActionCard]) -> list[Any]:
    """For a sponsor: the open drift alerts on content their cards offer."""
    shown = {(c.hook, s.option_id) for c in cards if c.hook for s in c.content}
    if who.role is not Role.SPONSOR or not shown:
        return []
    from content_catalog.drift_alerts import open_alerts_on

    return [{"option_id": r.option_id, "title": _title(cards, r.hook, r.option_id),
             "before": r.alert["rate_before"], "after": r.alert["rate_after"],
             "since": str(r.alert["since"])[:10]}
            for r in open_alerts_on(engine.store, shown)]


def _title(cards: list[ActionCard], hook: str, option_id: str) -> str:
    return next((s.title for c in cards if c.hook == hook for s in c.content
                 if s.option_id == option_id and s.title), option_id)


@router.post("/me/cards/act", summary="A tap on a card: used it, used another, skip")
async def act(request: Request, engine: EngineDep) -> Response:
    found = _session(request, engine)
    if found is None:
        return RedirectResponse("/login", status_code=303)
    who, token = found
    form = await request.form()
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.url.netloc:
        return Response("cross-origin form refused", status_code=403)
    if not hmac.compare_digest(str(form.get("csrf", "")), csrf_token(token)):
        return Response("the form has expired; reload the page", status_code=403)
    fields = {k: str(v) for k, v in form.items()}
    try:
        message = await run_in_threadpool(_record, engine, who, fields)
    except (NextmoveError, Problem) as exc:
        status, _, _ = classify(exc)
        return RedirectResponse(f"/me/cards?problem={status}", status_code=303)
    return RedirectResponse(f"/me/cards?done={message}", status_code=303)


def _record(engine: Engine, who: Principal, form: dict[str, str]) -> str:
    try:
        instance_id = int(form["instance_id"])
        step, choice = form["step"], form["choice"]
    except (KeyError, ValueError):
        raise NextmoveError("the form is incomplete") from None
    require_step(engine, who, instance_id, step)  # the API's rule: 403 if not theirs
    data = {k.removeprefix("ask_"): v for k, v in form.items() if k.startswith("ask_") and v}
    if choice == "used":
        engine.complete(instance_id, step, data, actor=who.subject, used=form.get("top") or None)
    elif choice == "another":
        engine.complete(instance_id, step, data, actor=who.subject,
                        used=form.get("other") or None)
    elif choice == "skip":
        engine.skip(instance_id, step, "skipped on the card page", actor=who.subject)
    else:
        raise NextmoveError(f"unknown choice {choice!r}")
    return choice
