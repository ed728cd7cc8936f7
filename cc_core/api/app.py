"""The API's composition root: ``create_app`` wires the store, tokens and routes into one WSGI
app; ``serve`` runs it on gevent's WSGIServer; ``openapi_document`` is its generated spec."""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon

from cc_core.api import acd as acd_routes
from cc_core.api import provider as provider_routes
from cc_core.api import recordings as recording_routes
from cc_core.api import wallboard
from cc_core.api.auth import AuthMiddleware
from cc_core.api.errors import ApiError, MethodNotAllowed, NotFound, status_and_body
from cc_core.api.spec import spec
from cc_core.api.tokens import TokenStore

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
OPENAPI_PATH = "/v1/openapi.json"


class OpenApiDoc:
    """The generated OpenAPI document; public, like any API's description."""

    public = True

    def on_get(self, req: Any, resp: Any) -> None:
        resp.media = openapi_document()


class _BodyLimit:
    def process_resource(self, req: Any, resp: Any, resource: Any, params: Any) -> None:
        # A route that takes files (material scans) says how much it takes.
        limit = getattr(resource, "max_body_bytes", MAX_BODY_BYTES)
        if (req.content_length or 0) > limit:
            raise ApiError(f"the request body is over {limit} bytes"
                           + ("; these requests are small JSON objects"
                              if limit == MAX_BODY_BYTES else ""), error_id="body_too_large")


def _error(req: Any, resp: Any, exc: Exception, params: Any) -> None:
    if isinstance(exc, falcon.HTTPError):
        exc = _from_falcon(exc)
    status, body = status_and_body(exc)
    if status >= 500:
        log.exception("API: %s %s failed", req.method, req.path, exc_info=exc)
    resp.status = status
    if status == 401:
        resp.set_header("WWW-Authenticate", "Bearer")
    resp.media = body.model_dump(mode="json", exclude_none=True)


def _from_falcon(exc: falcon.HTTPError) -> Exception:
    code = exc.status_code
    if code == 404:
        return NotFound(f"no such route: see {OPENAPI_PATH} for the API's routes")
    if code == 405:
        return MethodNotAllowed(f"this route does not take that method: see {OPENAPI_PATH}")
    if isinstance(exc, falcon.MediaMalformedError | falcon.MediaNotFoundError):
        return ApiError("the request body is not valid JSON; send a JSON object with "
                        "Content-Type: application/json", error_id="invalid_json")
    err = ApiError(f"{exc.title}: {exc.description or 'see ' + OPENAPI_PATH}",
                   error_id=f"http_{code}")
    err.status = code if 400 <= code < 500 else 400
    return err


def create_app(*, acd: Any, tokens: TokenStore, records: str | None = None,
               materials_root: str | None = None,
               recordings_root: str | None = None, dial: Any = None) -> falcon.App:
    """``records``: the record store (SQLite path or PostgreSQL DSN) of the number business'
    and the recordings' routes; ``materials_root``: where applicants' material files are kept;
    ``recordings_root``: the recordings root downloads are served from."""
    # Authentication first: nobody learns a route's size limit without a valid token.
    middleware: list[Any] = [AuthMiddleware(tokens), _BodyLimit()]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.add_error_handler(Exception, _error)
    app.add_error_handler(falcon.HTTPError, _error)
    acd_routes.add_routes(app, acd)
    wallboard.add_routes(app, acd)
    provider_routes.add_routes(app, records, materials_root, getattr(acd, "redis", None), dial)
    recording_routes.add_routes(app, getattr(acd, "redis", None), records, recordings_root)
    app.add_route(OPENAPI_PATH, OpenApiDoc())
    spec.app = app     # spectree reads the routes from here (no doc pages are added)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of every route, generated from the request/response models."""
    if getattr(spec, "app", None) is None:
        create_app(acd=None, tokens=TokenStore(None))
    return dict(spec.spec)


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def selftest_dial(node: Any, redis: Any) -> Any:
    """The 拨测 test call of an activation, through ``node`` (cc_core.selftest)."""
    def dial(number: str, keys_: list[str], caller: str) -> Any:
        import gevent

        from cc_core.routing.region import RegionDirectory
        from cc_core.selftest import run_selftest
        from cc_core.tenants.store import TenantDirectory
        from provider.activation import DialTest

        gevent.sleep(1.5)    # workers pick up the new configuration version within 1 s
        lines: list[str] = []
        code = run_selftest(node, redis, TenantDirectory(redis), RegionDirectory(), number,
                            keys_, caller, timeout_s=30, out=lines.append)
        return DialTest(code == 0, "\n".join(lines))

    return dial


def serve(listen: str, redis_url: str, *, records: str | None = None,
          materials_root: str | None = None, recordings_root: str | None = None,
          node: Any = None) -> None:
    """Serve the API on ``listen`` (HOST:PORT) until SIGTERM/SIGINT. Call after gevent's
    monkey-patching (the CLI does it first)."""
    import signal

    import gevent
    from gevent.pywsgi import WSGIServer

    from acd.store import Acd
    from cc_core import redisconn
    from cc_core.errors import ConfigError

    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    client = redisconn.connect(redis_url, socket_timeout=10, socket_connect_timeout=5)
    app = create_app(acd=Acd(client), tokens=TokenStore(client), records=records,
                     materials_root=materials_root, recordings_root=recordings_root,
                     dial=selftest_dial(node, client) if node is not None else None)
    server = WSGIServer((host.strip("[]"), int(port)), app, log=None, error_log=log)
    gevent.signal_handler(signal.SIGTERM, server.stop)
    gevent.signal_handler(signal.SIGINT, server.stop)
    log.info("API: serving on %s", listen)
    server.serve_forever()
