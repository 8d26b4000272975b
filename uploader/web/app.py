"""The local web page: Starlette routes over a :class:`~uploader.web.workspace.Workspace`.

The page renders and forwards; what happens to a row is decided by the
library, exactly as for the CLI. Every request passes :class:`Guard` first.
Needs the ``web`` extra: ``pip install 'signal-uploader[web]'``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import zoneinfo
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode

import phonenumbers
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._version import __version__
from ..errors import UploaderError
from ..messages import size_text, told
from ..report import report_as
from ..targets import LISTINGS, TARGETS
from .workspace import FileTooLarge, Workspace, journal_sources

COOKIE = "signal_uploader_key"
EVENT_INTERVAL = 0.25  # seconds between progress events at most: a 100,000-row run sends a few per second
HERE = Path(__file__).parent

_templates = Environment(loader=PackageLoader("uploader.web", "templates"), autoescape=select_autoescape(["html"]))


class Guard:
    """What keeps other websites out of a page on localhost (pure ASGI, so progress streams pass through).

    - ``Host`` must be this server's own address: a DNS-rebinding page's host name is refused;
    - ``Origin``, when a browser sends one, must be this server's own: another site's posts are refused;
    - every request carries the access key: ``?key=`` once (then a cookie, and the key leaves the
      address bar), or the cookie. The key is printed by ``serve``, as Jupyter does.
    """

    def __init__(self, app, *, key: str, hosts: set[str]):
        self.app, self.key, self.hosts = app, key, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if host not in self.hosts:
            return await _refuse(send, 403, f"this page answers to {sorted(self.hosts)[0]} only, not {host!r}")
        origin = headers.get("origin")
        if origin is not None and origin.removeprefix("http://") not in self.hosts:
            return await _refuse(send, 403, "requests from other websites are refused")
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return await _refuse(send, 403, "requests from other websites are refused")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = (query.get("key") or [""])[0]
        if given and hmac.compare_digest(given, self.key) and scope["method"] == "GET":
            rest = {k: v for k, v in query.items() if k != "key"}
            location = scope["path"] + (("?" + urlencode(rest, doseq=True)) if rest else "")
            cookie = f"{COOKIE}={self.key}; HttpOnly; SameSite=Strict; Path=/"
            return await _respond(
                send,
                303,
                b"",
                [
                    (b"location", location.encode()),
                    (b"set-cookie", cookie.encode()),
                    (b"referrer-policy", b"no-referrer"),
                ],
            )
        cookies = _cookies(headers.get("cookie", ""))
        if not hmac.compare_digest(cookies.get(COOKIE, ""), self.key):
            return await _refuse(
                send, 403, "open the address that `signal-uploader serve` printed (it carries the page's access key)"
            )
        return await self.app(scope, receive, send)


def _cookies(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


async def _respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refuse(send, status: int, message: str):
    body = json.dumps({"error": f"refused: {message}"}).encode()
    await _respond(send, status, body, [(b"content-type", b"application/json")])


SECURITY_HEADERS = {
    # The page's own script and styles only: nothing from a CDN, nothing inline.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def create_app(workspace: Workspace, *, key: str, hosts: set[str]) -> Guard:
    """The page's ASGI application, guarded (see :class:`Guard`)."""

    def error_response(exc: UploaderError) -> JSONResponse:
        status = 413 if isinstance(exc, FileTooLarge) else 400
        return JSONResponse(told(exc, page=True).as_json(), status_code=status)

    def api(handler):
        async def endpoint(request: Request):
            try:
                return await handler(request)
            except UploaderError as exc:
                return error_response(exc)
            except (ValueError, KeyError, TypeError) as exc:
                return JSONResponse(
                    {"error": f"the page sent something this server does not understand ({exc})"}, status_code=400
                )

        return endpoint

    async def body(request: Request) -> dict:
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    async def page(request: Request):
        template = _templates.get_template("index.html")
        apis = [
            {
                "name": name,
                "title": target.title,
                "refresh": bool(target.refresh_token_env),
                "once": not target.idempotent,  # an action that must not happen twice: confirmed first
                "pace": round(target.documented_rate * 60) if target.documented_rate else 0,
                "example": target.base_url_example,
            }
            for name, target in TARGETS.items()
        ]
        # Each target's own settings, from its declaration: a field each, shown for the APIs that declare it.
        own: dict[str, dict] = {}
        for name, target in TARGETS.items():
            for option in target.options:
                if option.cli:
                    field = own.setdefault(option.name, {"option": option, "apis": []})
                    field["apis"].append(name)
        regions = sorted((r, phonenumbers.country_code_for_region(r)) for r in phonenumbers.SUPPORTED_REGIONS)
        html = template.render(
            apis=apis,
            timezones=sorted(zoneinfo.available_timezones()),
            regions=regions,
            default_api=workspace.settings.api,
            listings=LISTINGS,
            own=[
                {
                    "name": name,
                    "help": f["option"].help.split(": ", 1)[-1],
                    "value": workspace.settings.option(name) or "",
                    "apis": " ".join(f["apis"]),
                }
                for name, f in own.items()
            ],
            default_region=workspace.settings.phone_region,
            base_url=workspace.settings.base_url or "",
            version=__version__,
            max_size=size_text(workspace.max_upload_bytes),
            keep_days=workspace.keep_days,
        )
        return HTMLResponse(html)

    async def state(request: Request):
        return JSONResponse(
            {
                "tokens": {name: workspace.has_token(name) for name in TARGETS},
                "base_url": workspace.settings.base_url,
                "runs": workspace.past_runs(),
            }
        )

    async def upload_file(request: Request):
        name = unquote(request.headers.get("x-file-name", ""))
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > workspace.max_upload_bytes:
            # Read what the browser sends before answering: an answer while it is still sending makes
            # the server close a connection with unread data, a reset the browser reports instead of it.
            async for _ in request.stream():
                pass
            raise FileTooLarge(
                f"{name or 'the file'} is larger than this page accepts ({size_text(workspace.max_upload_bytes)})",
                hint="split the file into smaller ones, or ask whoever started this page for a higher limit",
            )
        chunks, size = [], 0
        async for chunk in request.stream():  # gathered, then written in a thread: the size is checked as it comes
            size += len(chunk)
            if size <= workspace.max_upload_bytes + len(chunk):
                chunks.append(chunk)  # once over the limit, the rest is read (see above) and dropped
        stored = await run_in_threadpool(workspace.add_file, name, chunks)
        return JSONResponse(
            {
                "id": stored.id,
                "name": stored.name,
                "size": stored.size,
                "size_text": size_text(stored.size),
                "workbook": stored.is_workbook,
            }
        )

    async def columns(request: Request):
        data = await body(request)
        header_row = int(data["header_row"]) if data.get("header_row") else None
        chosen = data.get("chosen")
        result = await run_in_threadpool(
            workspace.columns,
            str(data["file"]),
            str(data["api"]),
            data.get("sheet"),
            header_row,
            {str(k): str(v) for k, v in chosen.items()} if isinstance(chosen, dict) else None,
        )
        return JSONResponse(result)

    async def token(request: Request):
        data = await body(request)
        workspace.set_token(str(data["api"]), str(data.get("token", "")), str(data.get("kind") or "token"))
        return JSONResponse({"ok": True})

    async def preview(request: Request):
        data = await body(request)
        made = await run_in_threadpool(workspace.preview, str(data["file"]), data)
        return JSONResponse(made.as_dict())

    async def preview_page(request: Request):
        made = workspace.get_preview(request.path_params["preview"])
        page = int(request.query_params.get("page", "0"))
        show = request.query_params.get("show", "invalid")
        rows = await run_in_threadpool(made.invalid_page, page, show)
        return JSONResponse({"invalid": rows, **(await run_in_threadpool(made.checked))})

    async def fix(request: Request):
        data = await body(request)
        made = workspace.get_preview(request.path_params["preview"])
        result = await run_in_threadpool(made.fix, int(data["row"]), str(data["header"]), str(data["value"]))
        return JSONResponse(result)

    async def bulk(request: Request):
        data = await body(request)
        made = workspace.get_preview(request.path_params["preview"])
        result = await run_in_threadpool(lambda: made.bulk(data, apply=bool(data.get("apply"))))
        return JSONResponse(result)

    async def undo(request: Request):
        made = workspace.get_preview(request.path_params["preview"])
        return JSONResponse(await run_in_threadpool(made.undo))

    async def forget(request: Request):
        return JSONResponse(await run_in_threadpool(workspace.forget, request.path_params["run"]))

    async def start_upload(request: Request):
        run = workspace.upload(request.path_params["preview"])
        return JSONResponse({"run": run.id})

    async def runs(request: Request):
        sources = await run_in_threadpool(journal_sources, workspace.settings)
        return JSONResponse({"runs": workspace.past_runs(), "sources": sources})

    async def run_state(request: Request):
        return JSONResponse(workspace.get_run(request.path_params["run"]).snapshot())

    async def cancel(request: Request):
        workspace.get_run(request.path_params["run"]).cancel()
        return JSONResponse({"ok": True})

    async def retry(request: Request):
        data = await body(request)
        run = workspace.retry(
            request.path_params["run"],
            include_not_found=bool(data.get("include_not_found")),
            include_unknown=bool(data.get("include_unknown")),
        )
        return JSONResponse({"run": run.id})

    async def events(request: Request):
        run = workspace.get_run(request.path_params["run"])

        async def stream():
            seen = -1
            while True:
                snapshot = run.snapshot()
                if snapshot["version"] != seen:
                    seen = snapshot["version"]
                    kind = "done" if run.done else "progress"
                    yield f"event: {kind}\ndata: {json.dumps(snapshot)}\n\n"
                if run.done or await request.is_disconnected():
                    return
                await asyncio.sleep(EVENT_INTERVAL)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    async def find_calls(request: Request):
        calls = workspace.find_calls(await body(request))
        return JSONResponse({"calls": calls.id})

    async def calls_actions(request: Request):
        data = await body(request)
        values = data.get("values") or {}
        stored = await run_in_threadpool(
            workspace.action_file,
            request.path_params["calls"],
            str(data["api"]),
            [str(u) for u in data.get("calls") or []],
            {str(k): str(v) for k, v in values.items()},
        )
        return JSONResponse(
            {
                "id": stored.id,
                "name": stored.name,
                "size": stored.size,
                "size_text": size_text(stored.size),
                "workbook": False,
            }
        )

    async def calls_state(request: Request):
        return JSONResponse(workspace.get_calls(request.path_params["calls"]).snapshot())

    async def cancel_calls(request: Request):
        workspace.get_calls(request.path_params["calls"]).cancel()
        return JSONResponse({"ok": True})

    async def calls_export(request: Request):
        calls = workspace.get_calls(request.path_params["calls"])
        if not calls.done or not calls.out.is_file():
            return JSONResponse({"error": "these calls are not written yet"}, status_code=404)
        return FileResponse(calls.out, filename=f"calls{calls.out.suffix}")

    async def report(request: Request):
        run = workspace.get_run(request.path_params["run"])
        path = run.record.get("report")
        if not path or not Path(path).is_file():
            return JSONResponse({"error": "this run has no report (yet)"}, status_code=404)
        suffix = "." + request.path_params["format"]
        if suffix not in (".csv", ".xlsx"):
            return JSONResponse({"error": "reports download as .csv or .xlsx"}, status_code=404)
        out = await run_in_threadpool(report_as, Path(path), suffix)
        return FileResponse(out, filename=out.name)

    routes = [
        Route("/", page),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/state", api(state)),
        Route("/api/files", api(upload_file), methods=["POST"]),
        Route("/api/columns", api(columns), methods=["POST"]),
        Route("/api/token", api(token), methods=["POST"]),
        Route("/api/preview", api(preview), methods=["POST"]),
        Route("/api/preview/{preview}", api(preview_page)),
        Route("/api/preview/{preview}/fix", api(fix), methods=["POST"]),
        Route("/api/preview/{preview}/bulk", api(bulk), methods=["POST"]),
        Route("/api/preview/{preview}/undo", api(undo), methods=["POST"]),
        Route("/api/preview/{preview}/upload", api(start_upload), methods=["POST"]),
        Route("/api/runs", api(runs)),
        Route("/api/runs/{run}", api(run_state)),
        Route("/api/runs/{run}/events", api(events)),
        Route("/api/runs/{run}/cancel", api(cancel), methods=["POST"]),
        Route("/api/runs/{run}/retry", api(retry), methods=["POST"]),
        Route("/api/runs/{run}/forget", api(forget), methods=["POST"]),
        Route("/api/runs/{run}/report.{format}", api(report)),
        Route("/api/calls", api(find_calls), methods=["POST"]),
        Route("/api/calls/{calls}", api(calls_state)),
        Route("/api/calls/{calls}/cancel", api(cancel_calls), methods=["POST"]),
        Route("/api/calls/{calls}/export", api(calls_export)),
        Route("/api/calls/{calls}/actions", api(calls_actions), methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("uploader.web", "static")]), name="static"),
    ]
    app = Starlette(routes=routes)

    async def with_headers(scope, receive, send):
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                ]
            await send(message)

        await app(scope, receive, send_with_headers)

    return Guard(with_headers, key=key, hosts=hosts)


def new_key() -> str:
    return secrets.token_urlsafe(24)


def own_hosts(host: str, port: int) -> set[str]:
    """The Host headers this server answers to: its address, and localhost's names for loopback."""
    names = {host}
    if host in ("127.0.0.1", "localhost", "::1"):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    elif ":" in host:
        names = {f"[{host}]"}
    return {f"{name}:{port}" for name in names}
