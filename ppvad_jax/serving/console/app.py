"""The console's ASGI app (Starlette): pages, a JSON API, a live event stream, the actions.

Security, all of it tested (tests/test_console.py):
- every route but ``/login`` and ``/static`` needs a logged-in session; anything else is sent to
  the login page (HTML) or answered 401 (API, events), so an unauthenticated request sees nothing;
- sessions are signed cookies (``SessionMiddleware``), HttpOnly, Secure and SameSite=Strict,
  valid ``session_hours``; the role is re-read from the users file on every request;
- every state change is a POST carrying the session's CSRF token (compared in constant time);
- only ``operator`` accounts acknowledge or resolve; each action is committed to the alert store
  with the user, role and time before the page says it is done;
- repeated failed logins lock the name out for a while; responses carry a strict CSP.
"""

import asyncio
import csv
import datetime
import hmac
import io
import json
import pathlib
import secrets
import time

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ppvad_jax.serving import camera_state, operator_store
from ppvad_jax.serving.console import accounts

HERE = pathlib.Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
OPEN_PATHS = ("/login", "/static/")
# The line drawn on the timelines: the servers' default (configs/serve.py, config.sas).
ALERT_THRESHOLD = camera_state.SasParams().alert_threshold
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000",
    "Cache-Control": "no-store",
}


class LoginThrottle:
    """At most ``attempts`` failed logins per name in ``window_s``; then refused for the window."""

    def __init__(self, attempts=5, window_s=300.0):
        self.attempts, self.window_s, self._failures = attempts, window_s, {}

    def locked(self, name, now):
        recent = [t for t in self._failures.get(name, []) if now - t < self.window_s]
        self._failures[name] = recent
        return len(recent) >= self.attempts

    def failed(self, name, now):
        self._failures.setdefault(name, []).append(now)


class Console:
    """State shared by the handlers: the store, the accounts, the settings."""

    def __init__(self, store, users, *, timeline_minutes=10.0, poll_s=1.0):
        self.operator = operator_store.OperatorStore(store)
        self.accounts = users
        self.timeline_minutes, self.poll_s = timeline_minutes, poll_s
        self.throttle = LoginThrottle()

    async def call(self, fn, *args, **kwargs):
        return await run_in_threadpool(fn, *args, **kwargs)


def _user(request):
    """``(name, role)`` of the session's user, as ``Guard`` read it for this request, or None."""
    return request.scope.get("console_user")


def _csrf_ok(request, form):
    want = request.session.get("csrf", "")
    got = form.get("csrf", "") or request.headers.get("x-csrf-token", "")
    return bool(want) and hmac.compare_digest(str(got), want)


def _page(request, template, **context):
    name, role = _user(request) or (None, None)
    context.update(request=request, user=name, role=role, csrf=request.session.get("csrf", ""))
    return TEMPLATES.TemplateResponse(request, template, context)


async def login_page(request):
    request.session.setdefault("login_csrf", secrets.token_urlsafe(32))
    return TEMPLATES.TemplateResponse(
        request,
        "login.html",
        {"csrf": request.session["login_csrf"], "error": request.query_params.get("error")},
    )


async def login(request):
    console = request.app.state.console
    form = await request.form()
    token = request.session.get("login_csrf", "")
    if not token or not hmac.compare_digest(str(form.get("csrf", "")), token):
        return PlainTextResponse("login refused: missing or stale form token (reload the login page)", 403)
    name, password, now = str(form.get("username", "")), str(form.get("password", "")), time.time()
    if console.throttle.locked(name, now):
        return RedirectResponse("/login?error=locked", 303)
    role = await console.call(console.accounts.authenticate, name, password)
    if role is None:
        console.throttle.failed(name, now)
        return RedirectResponse("/login?error=wrong", 303)
    request.session.clear()  # a fresh session: nothing from before the login carries over
    request.session.update(user=name, csrf=secrets.token_urlsafe(32), since=now)
    return RedirectResponse("/", 303)


async def logout(request):
    form = await request.form()
    if _csrf_ok(request, form):
        request.session.clear()
    return RedirectResponse("/login", 303)


async def home(request):
    console = request.app.state.console
    cameras = await console.call(console.operator.cameras)
    alerts = await console.call(console.operator.alerts, limit=20)
    return _page(request, "home.html", cameras=cameras, alerts=alerts, minutes=console.timeline_minutes)


def _filters(request):
    q = request.query_params
    state = q.get("state") or None
    if state is not None and state not in operator_store.STATES:
        raise ValueError(f"state must be one of {operator_store.STATES}")
    return {"camera_id": q.get("camera") or None, "state": state}


async def alerts_page(request):
    console = request.app.state.console
    try:
        filters = _filters(request)
    except ValueError as e:
        return PlainTextResponse(str(e), 400)
    alerts = await console.call(console.operator.alerts, **filters)
    cameras = [c["camera_id"] for c in await console.call(console.operator.cameras)]
    return _page(request, "alerts.html", alerts=alerts, cameras=cameras, filters=filters)


async def alert_page(request):
    console = request.app.state.console
    alert_id = request.path_params["alert_id"]
    view = await console.call(console.operator.alert, alert_id)
    if view is None:
        return PlainTextResponse(f"no alert {alert_id!r}", 404)
    frames = await console.call(console.operator.alert_frames, alert_id)
    return _page(request, "alert.html", view=view, frames=frames, message=request.query_params.get("done"))


async def alert_action(request):
    console = request.app.state.console
    form = await request.form()
    if not _csrf_ok(request, form):
        return PlainTextResponse("refused: missing or wrong CSRF token", 403)
    name, role = _user(request)
    if role != "operator":
        return PlainTextResponse(f"refused: {name} is a {role}; only operators acknowledge or resolve", 403)
    alert_id, action = request.path_params["alert_id"], request.path_params["action"]
    try:
        state = await console.call(
            console.operator.record_action, alert_id, action, username=name, role=role,
            note=str(form.get("note", ""))[:2000],
        )  # fmt: skip
    except operator_store.ActionRefused as e:
        return PlainTextResponse(f"refused: {e}", 409)
    return RedirectResponse(f"/alerts/{alert_id}?done={state}", 303)


async def privacy_page(request):
    console = request.app.state.console
    cameras = await console.call(console.operator.cameras)
    for c in cameras:
        c["autoencoder_info"] = _json(c["autoencoder"])
    return _page(request, "privacy.html", cameras=cameras)


def _json(text):
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {"error": f"unreadable: {text[:80]!r}"}


def _when(text, name):
    """An ISO date or date-time (local time) as Unix seconds; None for ''."""
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError as e:
        raise ValueError(f"{name}={text!r} is not an ISO date or date-time (e.g. 2026-12-08T14:00)") from e


async def export_csv(request):
    console = request.app.state.console
    try:
        since = _when(request.query_params.get("since", ""), "since")
        until = _when(request.query_params.get("until", ""), "until")
    except ValueError as e:
        return PlainTextResponse(str(e), 400)
    alerts = await console.call(console.operator.alerts, since=since, until=until, limit=100000)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["alert_id", "camera_id", "start_time", "end_time", "peak_score", "active", "state", "actions"]
    )
    for v in reversed(alerts):
        a = v.alert
        actions = "; ".join(f"{x.action} by {x.username} at {_iso(x.at)}: {x.note}" for x in v.actions)
        writer.writerow([a.alert_id, a.camera_id, _iso(a.start_time), _iso(a.end_time), f"{a.peak_score:.4f}",
                         int(a.is_open), v.state, actions])  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="alerts.csv"'},
    )


def _iso(t):
    return datetime.datetime.fromtimestamp(t).isoformat(sep=" ", timespec="seconds")


async def api_cameras(request):
    console = request.app.state.console
    return JSONResponse(await console.call(console.operator.cameras))


async def api_alerts(request):
    console = request.app.state.console
    try:
        filters = _filters(request)
    except ValueError as e:
        return JSONResponse({"error": str(e)}, 400)
    alerts = await console.call(console.operator.alerts, limit=200, **filters)
    return JSONResponse([v.as_dict() for v in alerts])


async def api_timeline(request):
    console = request.app.state.console
    q = request.query_params
    try:
        now = time.time()
        since = (
            float(q["since"])
            if "since" in q
            else now - 60 * float(q.get("minutes", console.timeline_minutes))
        )
        until = float(q["until"]) if "until" in q else None
    except ValueError:
        return JSONResponse({"error": "since, until and minutes must be numbers"}, 400)
    rows = await console.call(
        console.operator.timeline, request.path_params["camera_id"], since=since, until=until
    )
    camera_alerts = await console.call(
        console.operator.alerts, camera_id=request.path_params["camera_id"], limit=200
    )
    spans = [[v.alert.start_time, v.alert.end_time, v.alert.alert_id] for v in camera_alerts]
    return JSONResponse(
        {"since": since, "until": until or now, "threshold": ALERT_THRESHOLD, "frames": rows, "alerts": spans}
    )


async def events(request):
    """Server-Sent Events: every ``poll_s`` the cameras and the newest alerts, while connected."""
    console = request.app.state.console

    name = _user(request)[0]

    async def stream():  # ends when the camera page closes or the account is removed
        while not await request.is_disconnected() and console.accounts.role(name) is not None:
            cameras = await console.call(console.operator.cameras)
            alerts = await console.call(console.operator.alerts, limit=50)
            payload = {"cameras": cameras, "alerts": [v.as_dict() for v in alerts], "at": time.time()}
            yield f"event: update\ndata: {json.dumps(payload)}\n\n"
            await asyncio.sleep(console.poll_s)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


async def camera_thumbnail(request):
    console = request.app.state.console
    data = await console.call(console.operator.thumbnail, request.path_params["camera_id"])
    return Response(data, media_type="image/jpeg") if data else PlainTextResponse("no thumbnail yet", 404)


async def alert_frame(request):
    console = request.app.state.console
    p = request.path_params
    data = await console.call(console.operator.alert_frame, p["alert_id"], p["frame_index"])
    return Response(data, media_type="image/jpeg") if data else PlainTextResponse("no such frame", 404)


class Guard:
    """ASGI middleware inside SessionMiddleware: reads the session user's role from the users file
    once per request (a removed account loses its session), walls off everything but
    ``OPEN_PATHS`` before login, and adds the security headers to every response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
            await send(message)

        session = scope.get("session", {})
        name = session.get("user")
        role = scope["app"].state.console.accounts.role(name) if name else None
        if name and role is None:
            session.clear()
        scope["console_user"] = (name, role) if role else None
        path = scope["path"]
        if not path.startswith(OPEN_PATHS) and role is None:
            api = path.startswith(("/api/", "/events"))
            response = (
                JSONResponse({"error": "log in first"}, 401) if api else RedirectResponse("/login", 303)
            )
            return await response(scope, receive, send_with_headers)
        await self.app(scope, receive, send_with_headers)


def make_app(store, users_path, *, secret, session_hours=12.0, timeline_minutes=10.0, poll_s=1.0):
    """The console over an alert store and a users file; ``secret`` signs the session cookies."""
    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", home),
        Route("/alerts", alerts_page),
        Route("/alerts.csv", export_csv),
        Route("/alerts/{alert_id}", alert_page),
        Route("/alerts/{alert_id}/{action:str}", alert_action, methods=["POST"]),
        Route("/alerts/{alert_id}/frames/{frame_index:int}.jpg", alert_frame),
        Route("/privacy", privacy_page),
        Route("/cameras/{camera_id}/thumbnail.jpg", camera_thumbnail),
        Route("/api/cameras", api_cameras),
        Route("/api/alerts", api_alerts),
        Route("/api/timeline/{camera_id}", api_timeline),
        Route("/events", events),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(
            SessionMiddleware, secret_key=secret, session_cookie="ppvad_console",
            max_age=int(session_hours * 3600), same_site="strict", https_only=True,
        ),
        Middleware(Guard),
    ]  # fmt: skip
    app = Starlette(routes=routes, middleware=middleware)
    app.state.console = Console(
        store, accounts.Accounts(users_path), timeline_minutes=timeline_minutes, poll_s=poll_s
    )
    return app


def serve(store, users_path, certs_dir, *, host="127.0.0.1", port=8443, **settings):
    """Runs the console over HTTPS (``certs_dir/console.crt``, ``console.key``) until stopped."""
    import uvicorn  # noqa: PLC0415 - only the serving path needs it

    certs = pathlib.Path(certs_dir)
    web = make_app(store, users_path, secret=accounts.session_secret(f"{users_path}.secret"), **settings)
    uvicorn.run(
        web, host=host, port=port, ssl_certfile=str(certs / "console.crt"),
        ssl_keyfile=str(certs / "console.key"), log_level="warning", timeout_graceful_shutdown=2,
    )  # fmt: skip
