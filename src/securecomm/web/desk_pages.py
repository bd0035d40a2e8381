"""The detainer desk in a browser (`/desk/…`): signed-in pages over the desk's service layer.

Every page calls the same `desk.service.Desk` functions the API calls, as the signed-in user: the
service checks the role again, audits the reads of personal data and refuses what the API refuses.
The session is the desk's own bearer token, kept in a cookie (HttpOnly, SameSite=Strict, Secure
under TLS, path `/desk`); every POST form carries a CSRF token derived from it (and the sign-in form
a double-submit token), checked before anything else. Sign-ins go through the desk's login throttle.
Pages send `Cache-Control: no-store` (the desk's guard adds it to every page that sets none).
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

import anyio
import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from securecomm.core import schema
from securecomm.desk import reports
from securecomm.desk.api import DetainerIntake
from securecomm.desk.security import Permission, Role
from securecomm.desk.service import (
    EVENT_KINDS,
    Actor,
    Conflict,
    Desk,
    DeskError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    custody_deadline,
)
from securecomm.desk.throttle import Throttle
from securecomm.web.desk_forms import (
    INTAKE_LABELS,
    blank_intake,
    intake_body,
    intake_errors,
    read_upload,
    service_error_field,
)
from securecomm.web.desk_views import countdown, report_charts, timeline

T = TypeVar("T")
PACKAGE = resources.files("securecomm.web")
COOKIE = "securecomm_desk"
SIGN_IN_COOKIE = "securecomm_desk_signin"
PREFIX = "/desk"
CUSTODY_CHOICES = {"in_custody": "in custody", "released": "released", "picked_up_by_ice": "transferred to ICE"}
# The desk's pages in the order of the navigation, each with the permission it needs.
NAVIGATION = (
    ("/desk/queue", "Queue", Permission.READ_DETAINER),
    ("/desk/intake", "Intake", Permission.CREATE_DETAINER),
    ("/desk/users", "Users", Permission.MANAGE_USERS),
    ("/desk/policy", "Policy in force", Permission.READ_DESK),
    ("/desk/report", "Quarterly report", Permission.READ_REPORTS),
    ("/desk/audit", "Audit trail", Permission.READ_AUDIT),
)
LOGIN_CHECKS_AT_ONCE = 4


class _SignIn(Exception):
    """No valid session: send the browser to the sign-in page (with a message)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class _Denied(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Session:
    """The signed-in user of a request: the desk's actor, and the CSRF token of this session."""

    actor: Actor
    csrf: str

    def may(self, permission: Permission) -> bool:
        return self.actor.may(permission)


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: derived from its secret, so only a page of this session knows it."""
    return hashlib.sha256(b"securecomm desk csrf\0" + session_token.encode()).hexdigest()


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _form(request: Request) -> dict[str, list[str]]:
    body = await request.body()
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


async def _multipart(request: Request) -> dict[str, tuple[str, bytes]]:
    """The parts of a multipart/form-data body by field name: (file name, bytes). The body is already
    bounded by the desk's guard."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return {}
    body = await request.body()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    parts: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            parts[name] = (part.get_filename() or "", part.get_payload(decode=True) or b"")
    return parts


def _first(values: dict[str, list[str]], name: str) -> str:
    return (values.get(name) or [""])[0]


def create_desk_pages(desk: Desk, throttle: Throttle, *, secure_cookies: bool = False) -> FastAPI:
    """The desk's pages as an ASGI app, to mount at `/desk` in the desk's own app (`web.served`)."""
    app = FastAPI(title="securecomm desk pages", docs_url=None, redoc_url=None, openapi_url=None)
    loader = jinja2.FileSystemLoader(str(PACKAGE / "templates"))
    templates = Jinja2Templates(env=jinja2.Environment(loader=loader, autoescape=True))
    templates.env.globals.update(
        schema=schema, labels=INTAKE_LABELS, custody_choices=CUSTODY_CHOICES, event_kinds=EVENT_KINDS, roles=list(Role)
    )
    login_slots = threading.BoundedSemaphore(LOGIN_CHECKS_AT_ONCE)

    async def run(function: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(partial(function, *args))

    def zone() -> ZoneInfo | None:
        name = desk.place_and_zone()[1]
        return ZoneInfo(name) if name else None

    def page(
        request: Request, name: str, context: dict[str, Any], session: Session | None, status: int = 200
    ) -> HTMLResponse:
        navigation = [
            {"href": href, "label": label, "current": request.url.path.startswith(href)}
            for href, label, permission in NAVIGATION
            if session is not None and session.may(permission)
        ]
        response = templates.TemplateResponse(
            request, name, {"session": session, "navigation": navigation, **context}, status_code=status
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- sessions ---------------------------------------------------------------------------------

    async def signed_in(request: Request) -> Session:
        token = request.cookies.get(COOKIE)
        if not token:
            raise _SignIn()
        try:
            actor = desk.recently_authenticated(token) or await run(desk.authenticate, token)
        except Unauthorized:
            raise _SignIn("Your session has ended: sign in again.") from None
        except Forbidden as error:
            raise _SignIn(f"You cannot use the desk: {error}.") from None
        return Session(actor, csrf_token(token))

    async def requires(request: Request, permission: Permission) -> Session:
        session = await signed_in(request)
        if session.actor.must_change_password:
            raise _SignIn("must-change")
        if not session.may(permission):
            error = await run(desk.record_denied, session.actor, permission)
            raise _Denied(str(error))
        return session

    async def posted(request: Request, session: Session) -> dict[str, list[str]]:
        values = await _form(request)
        _check_csrf(_first(values, "csrf"), session.csrf)
        return values

    def _check_csrf(sent: str, expected: str) -> None:
        if not sent or not hmac.compare_digest(sent, expected):
            raise _Denied("The form was not sent from this session's page (CSRF check failed): open the page again.")

    def set_session(response: Response, token: str) -> None:
        response.set_cookie(COOKIE, token, httponly=True, secure=secure_cookies, samesite="strict", path=PREFIX)

    @app.exception_handler(_SignIn)
    async def to_sign_in(request: Request, error: _SignIn) -> Response:
        if error.message == "must-change":
            return RedirectResponse(f"{PREFIX}/password", status_code=303)
        target = f"{PREFIX}/sign-in?next={quote(request.url.path)}"
        if error.message:
            target += f"&message={quote(error.message)}"
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    @app.exception_handler(_Denied)
    async def denied(request: Request, error: _Denied) -> Response:
        return page(request, "desk/error.html.j2", {"status": 403, "detail": error.message}, None, 403)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> Response:
        return page(request, "desk/error.html.j2", {"status": 404, "detail": str(error)}, None, 404)

    def sign_in_page(request: Request, message: str = "", status: int = 200, username: str = "") -> HTMLResponse:
        nonce = secrets.token_urlsafe(24)
        context = {"message": message, "nonce": nonce, "username": username, "next": _safe_next(request)}
        response = page(request, "desk/sign_in.html.j2", context, None, status)
        response.set_cookie(SIGN_IN_COOKIE, nonce, httponly=True, secure=secure_cookies, samesite="strict", path=PREFIX)
        return response

    def _safe_next(request: Request) -> str:
        target = request.query_params.get("next", "")
        return target if target.startswith(f"{PREFIX}/") and "//" not in target else f"{PREFIX}/"

    @app.get("/", response_model=None)
    async def home(request: Request) -> Response:
        session = await signed_in(request)
        if session.actor.must_change_password:
            return RedirectResponse(f"{PREFIX}/password", status_code=303)
        for href, _label, permission in NAVIGATION:
            if session.may(permission):
                return RedirectResponse(href, status_code=303)
        raise _Denied("Your role has no pages on the desk.")

    @app.get("/sign-in", response_class=HTMLResponse)
    async def sign_in_form(request: Request) -> HTMLResponse:
        return sign_in_page(request, request.query_params.get("message", ""))

    @app.post("/sign-in", response_model=None)
    async def sign_in(request: Request) -> Response:
        values = await _form(request)
        nonce = request.cookies.get(SIGN_IN_COOKIE, "")
        sent = _first(values, "nonce")
        if not nonce or not sent or not hmac.compare_digest(nonce, sent):
            return sign_in_page(request, "The sign-in form had expired: try again.", 400)
        username, password = _first(values, "username").strip(), _first(values, "password")
        if not username or not password:
            return sign_in_page(request, "Enter your username and your password.", 422, username)
        client = _client(request)
        wait = throttle.admit(username, client)
        if wait:
            return sign_in_page(
                request, f"Too many failed sign-ins: try again in {max(1, round(wait))} seconds.", 429, username
            )
        if not login_slots.acquire(blocking=False):
            throttle.release(username, client)
            return sign_in_page(request, "Too many sign-ins are being checked at once: try again.", 503, username)
        try:
            issued = await run(desk.login, username, password, client)
        except (Unauthorized, Forbidden) as error:
            throttle.done(username, client, success=False)
            return sign_in_page(request, f"Not signed in: {error}.", 401, username)
        except BaseException:
            throttle.release(username, client)
            raise
        finally:
            login_slots.release()
        throttle.done(username, client, success=True)
        target = f"{PREFIX}/password" if issued.must_change_password else _safe_next(request)
        response = RedirectResponse(target, status_code=303)
        set_session(response, issued.token)
        response.delete_cookie(SIGN_IN_COOKIE, path=PREFIX)
        return response

    @app.post("/sign-out", response_model=None)
    async def sign_out(request: Request) -> Response:
        session = await signed_in(request)
        await posted(request, session)
        await run(desk.logout, session.actor)
        response = RedirectResponse(f"{PREFIX}/sign-in?message={quote('You have signed out.')}", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    @app.get("/password", response_class=HTMLResponse)
    async def password_form(request: Request) -> HTMLResponse:
        session = await signed_in(request)
        return page(request, "desk/password.html.j2", {"errors": {}}, session)

    @app.post("/password", response_model=None)
    async def change_password(request: Request) -> Response:
        session = await signed_in(request)
        values = await posted(request, session)
        current, new, again = _first(values, "current"), _first(values, "new"), _first(values, "again")
        errors: dict[str, str] = {}
        if new != again:
            errors["again"] = "The two new passwords differ."
        if not errors:
            try:
                issued = await run(desk.change_password, session.actor, current, new, _client(request))
            except InvalidInput as error:
                errors["new" if "new" in error.field or error.field == "password" else "current"] = str(error)
            except (Unauthorized, Forbidden) as error:
                errors["current"] = str(error)
            else:
                response = RedirectResponse(f"{PREFIX}/", status_code=303)
                set_session(response, issued.token)
                return response
        return page(request, "desk/password.html.j2", {"errors": errors}, session, 422)

    # --- intake ------------------------------------------------------------------------------------

    def intake_page(
        request: Request, session: Session, form: dict[str, Any], errors: dict[str, str], **extra: Any
    ) -> HTMLResponse:
        context = {"form": form, "errors": errors, "intake_key": secrets.token_urlsafe(16), **extra}
        return page(request, "desk/intake.html.j2", context, session, 422 if errors else 200)

    @app.get("/intake", response_class=HTMLResponse)
    async def intake_form(request: Request) -> HTMLResponse:
        session = await requires(request, Permission.CREATE_DETAINER)
        return intake_page(request, session, blank_intake(), {})

    @app.post("/intake", response_model=None)
    async def intake(request: Request) -> Response:
        session = await requires(request, Permission.CREATE_DETAINER)
        values = await posted(request, session)
        form, body = intake_body(values)
        try:
            checked = DetainerIntake.model_validate(body)
        except ValidationError as error:
            return intake_page(request, session, form, intake_errors(error, form))
        key = _first(values, "intake_key") or None
        try:
            result = await run(desk.intake, session.actor, checked.model_dump(), key)
        except InvalidInput as error:
            return intake_page(request, session, form, {service_error_field(error.field): str(error)})
        except Conflict as error:
            return intake_page(request, session, form, {}, conflict=str(error), existing_id=error.existing_id)
        return RedirectResponse(f"{PREFIX}/detainers/{result['id']}?filed=1", status_code=303)

    @app.post("/intake/upload", response_class=HTMLResponse)
    async def upload(request: Request) -> HTMLResponse:
        session = await requires(request, Permission.CREATE_DETAINER)
        parts = await _multipart(request)
        _check_csrf(parts.get("csrf", ("", b""))[1].decode("utf-8", "replace"), session.csrf)
        name, data = parts.get("file", ("", b""))
        rows, problem = read_upload(name, data)
        outcomes = []
        for number, row in enumerate(rows, start=1):
            outcome: dict[str, Any] = {"row": number, "booking_ref": str(row.get("booking_ref", ""))}
            try:
                checked = DetainerIntake.model_validate(row)
                result = await run(desk.intake, session.actor, checked.model_dump(), None)
            except ValidationError as error:
                outcome["errors"] = [f"{INTAKE_LABELS.get(f, f)}: {m}" for f, m in intake_errors(error).items()]
            except InvalidInput as error:
                outcome["errors"] = [f"{error.field}: {error}"]
            except Conflict as error:
                outcome["errors"] = [str(error)]
                outcome["existing_id"] = error.existing_id
            else:
                outcome["id"] = result["id"]
                outcome["decision"] = result["decision"]
            outcomes.append(outcome)
        context = {"outcomes": outcomes, "upload_problem": problem, "file_name": name}
        return intake_page(request, session, blank_intake(), {}, **context)

    # --- the queue and a detainer ----------------------------------------------------------------------

    @app.get("/queue", response_class=HTMLResponse)
    async def queue(request: Request) -> HTMLResponse:
        session = await requires(request, Permission.READ_DETAINER)
        query = request.query_params
        custody = query.get("custody", "in_custody")
        decision = query.get("decision", "")
        review = query.get("review", "")
        office = query.get("office", "").strip()[:200]
        detainers = await run(
            partial(
                desk.detainer_list,
                session.actor,
                custody=custody if custody in CUSTODY_CHOICES else None,
                decision=decision if decision in ("honor", "decline", "review") else None,
                review_needed={"yes": True, "no": False}.get(review),
                office=office or None,
            )
        )
        now_utc = desk.clock.utc_now()
        for item in detainers:
            item["countdown"] = countdown(_deadline_utc(item), now_utc)
            item["deadline"] = custody_deadline(item)
        filters = {"custody": custody, "decision": decision, "review": review, "office": office}
        return page(request, "desk/queue.html.j2", {"detainers": detainers, "filters": filters}, session)

    def _deadline_utc(item: dict[str, Any]) -> dt.datetime | None:
        """When the person must go free, as a UTC instant (the hold's own, or release eligibility in the zone)."""
        deadline = custody_deadline(item)
        if deadline is None:
            return None
        if item.get("hold_until_utc") is not None and deadline == item.get("hold_until"):
            return item["hold_until_utc"]
        where = ZoneInfo(item["time_zone"]) if item.get("time_zone") else zone()
        if where is None:
            return None
        return deadline.replace(tzinfo=where).astimezone(dt.UTC).replace(tzinfo=None)

    async def detainer_page(
        request: Request, session: Session, detainer_id: int, status: int = 200, **extra: Any
    ) -> HTMLResponse:
        detainer = await run(desk.get_detainer, session.actor, detainer_id)
        clauses = await run(_clauses, detainer)
        now_utc = desk.clock.utc_now()
        context = {
            "d": detainer,
            "clauses": clauses,
            "countdown": countdown(_deadline_utc(detainer), now_utc),
            "timeline": timeline(detainer, desk.clock.local_now()),
            "may_review": session.may(Permission.REVIEW) and detainer["decision"] == "review",
            "may_record": session.may(Permission.RECORD_EVENT) and detainer["custody"] == "in_custody",
            "review_errors": {},
            "event_errors": {},
            "filed": request.query_params.get("filed") == "1",
            **extra,
        }
        return page(request, "desk/detainer.html.j2", context, session, status)

    def _clauses(detainer: dict[str, Any]) -> list[dict[str, Any]]:
        """The clauses of the deciding layer that its rule (or the detainer's citation) applies."""
        try:
            view = desk.policy_in_force_view(detainer["received_at"].date())
        except DeskError:
            return []
        deciding = detainer["decided_by"] or detainer["policy_id"]
        found = []
        for layer in view["layers"]:
            if layer["policy_id"] != deciding:
                continue
            for clause in layer["clauses"]:
                if detainer["rule"] in clause["applied_by"] or clause["citation"] == detainer["citation"]:
                    found.append(clause)
        return found

    @app.get("/detainers/{detainer_id}", response_class=HTMLResponse)
    async def detainer(request: Request, detainer_id: int) -> HTMLResponse:
        session = await requires(request, Permission.READ_DETAINER)
        return await detainer_page(request, session, detainer_id)

    @app.post("/detainers/{detainer_id}/review", response_model=None)
    async def review(request: Request, detainer_id: int) -> Response:
        session = await requires(request, Permission.REVIEW)
        values = await posted(request, session)
        decision, reason = _first(values, "decision"), _first(values, "reason").strip()
        errors: dict[str, str] = {}
        if decision not in ("honor", "decline"):
            errors["decision"] = "Choose honor or decline."
        if not reason:
            errors["reason"] = "Write the reason for the decision."
        if errors:
            return await detainer_page(
                request, session, detainer_id, 422, review_errors=errors, reason=reason, chosen=decision
            )
        try:
            await run(desk.review, session.actor, detainer_id, decision, reason)
        except Conflict as error:
            # Two reviewers at once: the second is told who decided, and nothing is overwritten.
            return await detainer_page(request, session, detainer_id, 409, conflict=str(error), reason=reason)
        except InvalidInput as error:
            errors[error.field] = str(error)
            return await detainer_page(request, session, detainer_id, 422, review_errors=errors, reason=reason)
        return RedirectResponse(f"{PREFIX}/detainers/{detainer_id}", status_code=303)

    @app.post("/detainers/{detainer_id}/events", response_model=None)
    async def record_event(request: Request, detainer_id: int) -> Response:
        session = await requires(request, Permission.RECORD_EVENT)
        values = await posted(request, session)
        kind, at = _first(values, "event"), _first(values, "at")
        override = _first(values, "override_reason").strip() or None
        errors: dict[str, str] = {}
        try:
            when = dt.datetime.fromisoformat(at)
        except ValueError:
            errors["at"] = "Enter the date and time, like 2014-03-06 17:00."
        if kind not in EVENT_KINDS:
            errors["event"] = "Choose what happened."
        if not errors:
            try:
                await run(desk.record_event, session.actor, detainer_id, kind, when, override)
            except InvalidInput as error:
                errors["at" if error.field in ("at", "") else error.field] = str(error)
            except Conflict as error:
                errors["event"] = str(error)
        if errors:
            return await detainer_page(request, session, detainer_id, 422, event_errors=errors)
        return RedirectResponse(f"{PREFIX}/detainers/{detainer_id}", status_code=303)

    # --- supervisor: users, the policy, the report -----------------------------------------------------

    async def users_page(request: Request, session: Session, status: int = 200, **extra: Any) -> HTMLResponse:
        users = await run(desk.list_users, session.actor)
        context = {"users": users, "errors": {}, "new": {}, "notice": "", **extra}
        return page(request, "desk/users.html.j2", context, session, status)

    @app.get("/users", response_class=HTMLResponse)
    async def users(request: Request) -> HTMLResponse:
        session = await requires(request, Permission.MANAGE_USERS)
        return await users_page(request, session)

    @app.post("/users", response_model=None)
    async def create_user(request: Request) -> Response:
        session = await requires(request, Permission.MANAGE_USERS)
        values = await posted(request, session)
        new = {name: _first(values, name).strip() for name in ("username", "role")}
        password = _first(values, "password")
        try:
            await run(desk.add_user, new["username"], password, new["role"], session.actor)
        except InvalidInput as error:
            field = error.field if error.field in ("username", "role") else "password"
            return await users_page(request, session, 422, errors={field: str(error)}, new=new)
        except Conflict as error:
            return await users_page(request, session, 409, errors={"username": str(error)}, new=new)
        return await users_page(request, session, notice=f"User {new['username']} created ({new['role']}).")

    @app.post("/users/{username}/{action}", response_model=None)
    async def change_user(request: Request, username: str, action: str) -> Response:
        session = await requires(request, Permission.MANAGE_USERS)
        values = await posted(request, session)
        try:
            if action == "disable":
                await run(desk.disable_user, username, session.actor)
                notice = f"{username} is disabled: no sign-in, and their sessions end."
            elif action == "enable":
                await run(desk.enable_user, username, session.actor)
                notice = f"{username} is enabled."
            elif action == "unlock":
                await run(desk.unlock_user, username, session.actor)
                throttle.clear_account(username)
                notice = f"{username} is unlocked."
            elif action == "password":
                await run(desk.reset_password, username, _first(values, "password"), session.actor)
                notice = f"{username} has a temporary password and must change it at the next sign-in."
            else:
                raise NotFound(f"no action {action!r}")
        except InvalidInput as error:
            return await users_page(request, session, 422, errors={f"password-{username}": str(error)})
        except Conflict as error:
            return await users_page(request, session, 409, notice=str(error))
        return await users_page(request, session, notice=notice)

    @app.get("/policy", response_class=HTMLResponse)
    async def policy(request: Request) -> HTMLResponse:
        session = await requires(request, Permission.READ_DESK)
        on = request.query_params.get("on", "")
        error = ""
        try:
            day = dt.date.fromisoformat(on) if on else None
        except ValueError:
            day, error = None, "Enter a date like 2014-03-06."
        try:
            view = await run(desk.policy_in_force_view, day)
        except InvalidInput as problem:
            view, error = None, str(problem)
        described = await run(desk.describe)
        context = {"view": view, "desk": described, "on": on, "error": error}
        return page(request, "desk/policy.html.j2", context, session, 422 if error else 200)

    def _quarter(request: Request) -> str:
        chosen = request.query_params.get("quarter", "")
        if chosen:
            return chosen
        today = desk.clock.local_now().date()
        return f"{today.year}Q{(today.month - 1) // 3 + 1}"

    @app.get("/report", response_class=HTMLResponse)
    async def report(request: Request) -> HTMLResponse:
        session = await requires(request, Permission.READ_REPORTS)
        quarter = _quarter(request)
        try:
            data = await run(desk.quarterly_report, session.actor, quarter)
        except InvalidInput as error:
            context = {"quarter": quarter, "report": None, "error": str(error), "charts": []}
            return page(request, "desk/report.html.j2", context, session, 422)
        context = {"quarter": quarter, "report": data, "error": "", "charts": report_charts(data)}
        return page(request, "desk/report.html.j2", context, session)

    @app.get("/report.csv", response_model=None)
    async def report_csv(request: Request) -> Response:
        session = await requires(request, Permission.READ_REPORTS)
        quarter = _quarter(request)
        data = await run(desk.quarterly_report, session.actor, quarter)
        return Response(
            reports.report_csv(data),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="desk-report-{quarter}.csv"',
                "Cache-Control": "no-store",
            },
        )

    # --- auditor: the trail and the chain ------------------------------------------------------------

    @app.get("/audit", response_class=HTMLResponse)
    async def audit_trail(request: Request) -> HTMLResponse:
        session = await requires(request, Permission.READ_AUDIT)
        search = request.query_params.get("q", "").strip()[:200]
        try:
            after = max(0, int(request.query_params.get("after", "0")))
        except ValueError:
            after = 0
        entries = await run(desk.audit_entries, session.actor, after, 1000)
        if search:
            needle = search.lower()
            entries = [
                entry
                for entry in entries
                if needle
                in f"{entry['actor']} {entry['action']} {entry['subject']} {json.dumps(entry['details'])}".lower()
            ]
        shown = entries[:100]
        more = len(entries) > 100
        context = {"entries": shown, "search": search, "after": after, "next_after": shown[-1]["seq"] if more else None}
        return page(request, "desk/audit.html.j2", context, session)

    @app.get("/audit/verify", response_class=HTMLResponse)
    async def audit_verify(request: Request) -> HTMLResponse:
        session = await requires(request, Permission.READ_AUDIT)
        result = await run(desk.verify_audit)
        context = {"result": result, "message": result.describe()}
        return page(request, "desk/verify.html.j2", context, session)

    return app
