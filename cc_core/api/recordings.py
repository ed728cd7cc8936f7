"""Recordings for a tenant: find them, download one, and start or stop one on demand.

Lookups are by the index (``recordings.index``), always with the token's tenant: a recording of
another tenant, or a call UUID that names nothing, is a 404. A download never joins what the
request says to the filesystem: the call UUID is a query parameter of the index lookup, and the
file is the index row's name resolved under the recordings root (``Root.resolve``: the layout's
exact shape, symlinks followed and refused when they leave the root).

On demand: the live call must be this tenant's, connected to an agent, in a queue whose policy
is ``on_demand``; the request is handed to the worker holding the call (``RECORDING_CHANNEL``)
and answered 202. An agent's token acts only on a call that agent is talking on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, ClassVar

import msgpack
from pydantic import BaseModel, Field
from spectree import Response

from cc_core import keys
from cc_core.api.errors import ApiError, ErrorBody, Forbidden, NotFound
from cc_core.api.spec import spec
from cc_core.api.tokens import Role

T = "/v1/tenants/{tenant}"
_ERRORS = {f"HTTP_{code}": ErrorBody for code in (401, 403, 404, 409)}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
CHUNK = 64 * 1024


class RecordingOut(BaseModel):
    call_uuid: str
    name: str = Field(description="<tenant>/<yyyy>/<mm>/<dd>/<call-uuid>.wav under the root")
    day: str
    agent: str
    caller: str
    dnis: str
    queue: str
    channels: int
    started_by: str
    started_ms: int
    stopped_ms: int | None
    duration_ms: int | None
    size: int | None


class RecordingList(BaseModel):
    recordings: list[RecordingOut]


class RecordingQuery(BaseModel):
    agent: str | None = Field(None, max_length=64)
    caller: str | None = Field(None, max_length=32)
    day: date | None = None
    limit: int = Field(100, ge=1, le=1000)


class OnDemandOut(BaseModel):
    call_uuid: str
    action: str
    status: str = "requested"


class _Resource:
    roles: ClassVar[dict[str, Role]] = {}

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx


class _Context:
    def __init__(self, redis: Any, records: str | None, root: str | None) -> None:
        self.redis = redis
        self.records = records
        self.root = root

    @contextmanager
    def tx(self) -> Iterator[Any]:
        if not self.records:
            raise ApiError("recordings are not configured on this API: serve it with --db "
                           "(the record store)", error_id="not_configured")
        from records.db import open_database
        from records.migrate import migrate

        with open_database(self.records) as store:
            migrate(store)
            with store.transaction(write=False) as tx:
                yield tx


def _out(r: Any) -> RecordingOut:
    return RecordingOut(call_uuid=r.call_uuid, name=r.name, day=r.day, agent=r.agent,
                        caller=r.caller, dnis=r.dnis, queue=r.queue, channels=r.channels,
                        started_by=r.started_by, started_ms=r.started_ms,
                        stopped_ms=r.stopped_ms, duration_ms=r.duration_ms, size=r.size)


def _one(ctx: _Context, tenant: str, call_uuid: str) -> Any:
    from recordings import index

    if not _UUID.match(call_uuid):
        raise NotFound(f"{call_uuid!r} is not a call UUID; list the tenant's recordings at "
                       f"/v1/tenants/{tenant}/recordings")
    with ctx.tx() as tx:
        row = index.get(tx, tenant, call_uuid)
    if row is None:
        raise NotFound(f"no recording of call {call_uuid} for tenant {tenant}",
                       error_id="recording_not_found")
    return row


class Recordings(_Resource):
    roles = {"GET": Role.SUPERVISOR}

    @spec.validate(query=RecordingQuery, resp=Response(HTTP_200=RecordingList, **_ERRORS),
                   tags=["recordings"])
    def on_get(self, req: Any, resp: Any, tenant: str) -> None:
        """The tenant's recordings, newest first, by agent, caller number or day."""
        from recordings import index

        q: RecordingQuery = req.context.query
        with self.ctx.tx() as tx:
            rows = index.search(tx, tenant, agent=q.agent, caller=q.caller,
                                day=q.day.isoformat() if q.day else None, limit=q.limit)
        resp.media = RecordingList(recordings=[_out(r) for r in rows]).model_dump(mode="json")


class RecordingItem(_Resource):
    roles = {"GET": Role.SUPERVISOR}

    @spec.validate(resp=Response(HTTP_200=RecordingOut, **_ERRORS), tags=["recordings"])
    def on_get(self, req: Any, resp: Any, tenant: str, call_uuid: str) -> None:
        resp.media = _out(_one(self.ctx, tenant, call_uuid)).model_dump(mode="json")


class RecordingAudio(_Resource):
    roles = {"GET": Role.SUPERVISOR}

    @spec.validate(resp=Response(**_ERRORS), tags=["recordings"])
    def on_get(self, req: Any, resp: Any, tenant: str, call_uuid: str) -> None:
        """The recording itself (audio/wav)."""
        from recordings.layout import OutsideRoot, Root

        row = _one(self.ctx, tenant, call_uuid)
        if not self.ctx.root:
            raise ApiError("recordings are not configured on this API: serve it with "
                           "--recordings-root", error_id="not_configured")
        try:
            path = Root(self.ctx.root).resolve(row.name, tenant)
            f = open(path, "rb")  # noqa: SIM115 - falcon closes the stream after sending it
        except OutsideRoot as exc:
            raise Forbidden(f"recording of call {call_uuid} is not served: {exc}",
                            error_id="recording_outside_root") from None
        except OSError:
            raise NotFound(f"the file of call {call_uuid}'s recording is missing; "
                           "cc-core recordings check lists such files",
                           error_id="recording_file_missing") from None
        resp.content_type = "audio/wav"
        resp.downloadable_as = f"{call_uuid}.wav"
        resp.set_stream(f, path.stat().st_size)


class OnDemand(_Resource):
    roles = {"POST": Role.AGENT}

    def __init__(self, ctx: _Context, action: str) -> None:
        super().__init__(ctx)
        self.action = action

    @spec.validate(resp=Response(HTTP_202=OnDemandOut, **_ERRORS), tags=["recordings"])
    def on_post(self, req: Any, resp: Any, tenant: str, call_uuid: str) -> None:
        """Start or stop the recording of a live call whose queue records on demand."""
        from cc_core.flow.record import CallData
        from cc_core.tenants.store import TenantDirectory
        from recordings.policy import plan

        if not _UUID.match(call_uuid) or self.ctx.redis is None:
            raise NotFound(f"no live call {call_uuid} for tenant {tenant}",
                           error_id="call_not_found")
        state, blob = self.ctx.redis.hmget(keys.call(tenant, call_uuid), "state", "data")
        if state is None:
            raise NotFound(f"no live call {call_uuid} for tenant {tenant} (it ended, or never "
                           "was this tenant's)", error_id="call_not_found")
        data = CallData.unpack(blob, tenant, "")
        if (state.decode() if isinstance(state, bytes) else state) != "connected":
            raise _conflict(f"call {call_uuid} is not talking to an agent; a recording starts "
                            "or stops only on a connected call")
        token = req.context.token
        if token.agent is not None and token.agent != data.agent:
            raise Forbidden(f"this token acts for agent {token.agent!r} only; call "
                            f"{call_uuid} is with {data.agent or 'nobody'}")
        config = TenantDirectory(self.ctx.redis).tenant(tenant)
        if config is None or plan(config, data.queue or None).mode.value != "on_demand":
            raise _conflict(f"queue {data.queue or '-'} does not record on demand (its policy "
                            "decides alone); set recording.mode: on_demand on the queue")
        self.ctx.redis.publish(keys.RECORDING_CHANNEL, msgpack.packb({
            "tenant": tenant, "call": call_uuid, "action": self.action,
            "by": f"{token.role.value}:{token.agent or ''}", "at_ms": int(time.time() * 1000)},
            use_bin_type=True))
        resp.status = 202
        resp.media = OnDemandOut(call_uuid=call_uuid, action=self.action).model_dump(mode="json")


def _conflict(message: str) -> ApiError:
    err = ApiError(message, error_id="recording_conflict")
    err.status = 409
    return err


def add_routes(app: Any, redis: Any, records: str | None, root: str | None) -> None:
    ctx = _Context(redis, records, root)
    app.add_route(f"{T}/recordings", Recordings(ctx))
    app.add_route(f"{T}/recordings/{{call_uuid}}", RecordingItem(ctx))
    app.add_route(f"{T}/recordings/{{call_uuid}}/audio", RecordingAudio(ctx))
    app.add_route(f"{T}/calls/{{call_uuid}}/recording/start", OnDemand(ctx, "start"))
    app.add_route(f"{T}/calls/{{call_uuid}}/recording/stop", OnDemand(ctx, "stop"))
