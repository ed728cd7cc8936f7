"""Routes of the number business (issue 12, ``provider/``) over the record store.

The provider's staff (``/v1/provider/...``, staff tokens only): the inventory (search, import,
one number with its history, moves along the life cycle), the audit (material verdicts,
decisions, overdue audits) and contracts. Tenants (``/v1/tenants/{tenant}/...``, their
supervisors; staff tokens too): their numbers, reserving a number, their applications with
their materials and submission, their contracts. A tenant never sees another tenant's
application (404, as if it did not exist). Suspension, resumption and cancellation move the
number's routing too; activation places its test call through the switch the API was given.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field
from spectree import Response

from cc_core.api.errors import ApiError, ErrorBody, NotFound
from cc_core.api.spec import spec
from cc_core.api.tokens import Role

P = "/v1/provider"
T = "/v1/tenants/{tenant}"
_ERRORS = {f"HTTP_{code}": ErrorBody for code in (400, 401, 403, 404, 409)}
MATERIAL_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


def _resp(model: type) -> Response:
    return Response(HTTP_200=model, **_ERRORS)


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---- models -------------------------------------------------------------------------------------
class NumberOut(BaseModel):
    number: str
    carrier: str
    grade: str
    points: int
    state: str
    tenant: str
    holder: str
    reserved_until_ms: int | None


class NumberList(BaseModel):
    numbers: list[NumberOut]


class EventOut(BaseModel):
    version: int
    from_state: str
    to_state: str
    actor: str
    reason: str
    at_ms: int


class NumberDetail(NumberOut):
    history: list[EventOut]


class ImportIn(BaseModel):
    numbers: list[str] = Field(min_length=1, max_length=2000,
                               description="400 numbers, any of 4008123456, 4008-123-456")


class InvalidRow(BaseModel):
    row: int
    value: str
    reason: str


class ImportOut(BaseModel):
    accepted: int
    duplicate: int
    invalid: list[InvalidRow]


class MoveIn(BaseModel):
    state: str = Field(description="the state to move to (provider.lifecycle)")
    reason: str = Field(min_length=1, max_length=500)
    tenant: str | None = Field(None, description="the tenant a contracted number goes to")


class ReserveIn(BaseModel):
    ttl_s: int = Field(72 * 3600, ge=60, le=30 * 86400)


class ApplicationIn(BaseModel):
    number: str
    kind: str = Field(pattern=r"^(enterprise|sole_trader)$")
    name: str = Field(min_length=1, max_length=200)


class MaterialOut(BaseModel):
    item: str
    status: str
    reason: str


class ApplicationOut(BaseModel):
    id: str
    number: str
    tenant: str
    kind: str
    name: str
    state: str
    submitted_ms: int | None
    due_ms: int | None
    reason: str
    materials: list[MaterialOut]


class ApplicationList(BaseModel):
    applications: list[ApplicationOut]


class ReviewIn(BaseModel):
    item: str
    verdict: str = Field(pattern=r"^(accept|reject)$")
    reason: str = Field("", max_length=500)


class DecisionIn(BaseModel):
    verdict: str = Field(pattern=r"^(accept|return|reject)$")
    reason: str = Field("", max_length=500)


class ContractIn(BaseModel):
    package: str
    promotion: str = ""
    term_years: int = Field(1, ge=1, le=10)
    auto_renew: bool = True
    sla: str = Field("99.9% monthly availability", max_length=500)
    esign_ref: str = Field(min_length=1, max_length=200)
    starts_on: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")


class ContractOut(BaseModel):
    application_id: str
    tenant: str
    number: str
    package: str
    promotion: str
    term_years: int
    auto_renew: bool
    yearly_fee_fen: int
    sla: str
    esign_ref: str
    starts_on: str


class ContractList(BaseModel):
    contracts: list[ContractOut]


# ---- mapping ------------------------------------------------------------------------------------
def _number_out(r: Any) -> NumberOut:
    return NumberOut(number=r.number, carrier=r.carrier, grade=r.grade, points=r.points,
                     state=r.state.value, tenant=r.tenant, holder=r.holder,
                     reserved_until_ms=r.reserved_until_ms)


def _app_out(a: Any) -> ApplicationOut:
    return ApplicationOut(id=a.id, number=a.number, tenant=a.tenant,
                          kind=a.applicant_kind.value, name=a.applicant_name,
                          state=a.state.value, submitted_ms=a.submitted_ms, due_ms=a.due_ms,
                          reason=a.reason, materials=[
                              MaterialOut(item=i, status=s.value, reason=why)
                              for i, (s, why) in a.materials.items()])


def _ok(resp: Any, model: BaseModel) -> None:
    resp.media = model.model_dump(mode="json")


class _Store:
    """Opens the record store for one request (each request its own connection)."""

    def __init__(self, target: str | None, materials_root: str | None,
                 redis: Any = None, dial: Any = None) -> None:
        self.target = target
        self.materials_root = materials_root
        self.redis = redis      # the applied tenant config: a number's routing follows moves
        self.dial = dial        # (number, keys, caller) -> DialTest: the 拨测 test call

    def tenants(self) -> Any:
        from cc_core.tenants.store import TenantStore

        if self.redis is None:
            raise ApiError("this API has no Redis: the routing of numbers cannot be changed "
                           "here", error_id="not_configured")
        return TenantStore(self.redis)

    @contextmanager
    def db(self) -> Iterator[Any]:
        if not self.target:
            raise ApiError("the number business is not configured on this API: serve it with "
                           "--db (the record store)", error_id="not_configured")
        from records.db import open_database
        from records.migrate import migrate

        with open_database(self.target) as store:
            migrate(store)
            yield store


def _domain(exc: Exception) -> Exception:
    """The number business's errors as API errors: unknown things 404, the rest 409."""
    from provider.inventory import UnknownNumber
    from provider.lifecycle import IllegalTransition

    if isinstance(exc, UnknownNumber):
        return NotFound(str(exc), error_id=exc.error_id)
    err = ApiError(str(exc), error_id=getattr(exc, "error_id", "conflict"))
    err.status = 409 if isinstance(exc, IllegalTransition) or "taken" in err.error_id \
        else 400
    return err


@contextmanager
def _mapped() -> Iterator[None]:
    from cc_core.errors import CcCoreError

    try:
        yield
    except ApiError:
        raise
    except CcCoreError as exc:
        raise _domain(exc) from exc


def _tenant_app(db: Any, tenant: str, app_id: str) -> Any:
    from provider.applications import ApplicationError, get_application

    try:
        app = get_application(db, app_id)
    except ApplicationError:
        app = None
    if app is None or app.tenant != tenant:
        raise NotFound(f"tenant {tenant!r} has no application {app_id!r}",
                       error_id="unknown_application")
    return app


# ---- the provider's staff -----------------------------------------------------------------------
class _Provider:
    provider = True

    def __init__(self, store: _Store) -> None:
        self.store = store


class ProviderNumbers(_Provider):
    roles: ClassVar = {"GET": Role.STAFF}

    @spec.validate(resp=_resp(NumberList), tags=["numbers"])
    def on_get(self, req: Any, resp: Any) -> None:
        """Search the inventory: ?carrier=telecom&pattern=*8888&grade=S&state=available."""
        from provider.grading import Grade
        from provider.inventory import search
        from provider.lifecycle import NumberState

        q = req.params
        with _mapped(), self.store.db() as db:
            try:
                grades = [Grade(g) for g in req.get_param_as_list("grade") or []]
                state = NumberState(q.get("state", "available"))
            except ValueError as exc:
                raise ApiError(f"{exc}: grade is S, A, B or C; state one of the life "
                               "cycle's") from None
            rows = search(db, carrier=q.get("carrier"), pattern=q.get("pattern"),
                          grades=grades, state=state,
                          limit=min(int(q.get("limit", 50)), 1000))
        _ok(resp, NumberList(numbers=[_number_out(r) for r in rows]))


class ProviderImport(_Provider):
    roles: ClassVar = {"POST": Role.STAFF}

    @spec.validate(json=ImportIn, resp=_resp(ImportOut), tags=["numbers"])
    def on_post(self, req: Any, resp: Any) -> None:
        """Add numbers to the inventory (graded, available); one transaction."""
        import tempfile

        from provider.inventory import import_numbers

        body: ImportIn = req.context.json
        token = req.context.token
        with tempfile.TemporaryDirectory() as tmp, _mapped(), self.store.db() as db:
            path = Path(tmp) / "numbers.csv"
            path.write_text("\n".join(body.numbers) + "\n", encoding="utf-8")
            s = import_numbers(db, path, now_ms=_now_ms(), actor=f"staff:{token.id}")
        _ok(resp, ImportOut(accepted=s.accepted, duplicate=s.duplicate, invalid=[
            InvalidRow(row=n, value=raw, reason=why) for n, raw, why in s.invalid]))


class ProviderNumber(_Provider):
    roles: ClassVar = {"GET": Role.STAFF}

    @spec.validate(resp=_resp(NumberDetail), tags=["numbers"])
    def on_get(self, req: Any, resp: Any, number: str) -> None:
        """One number and every move it made."""
        from provider.inventory import get, history

        with _mapped(), self.store.db() as db:
            row, events = get(db, number), history(db, number)
        _ok(resp, NumberDetail(**_number_out(row).model_dump(), history=[
            EventOut(version=e.version, from_state=e.from_state, to_state=e.to_state,
                     actor=e.actor, reason=e.reason, at_ms=e.at_ms) for e in events]))


class ProviderMoves(_Provider):
    roles: ClassVar = {"POST": Role.STAFF}

    @spec.validate(json=MoveIn, resp=_resp(NumberOut), tags=["numbers"])
    def on_post(self, req: Any, resp: Any, number: str) -> None:
        """Move a number along its life cycle (illegal moves: 409, naming the allowed ones)."""
        from provider.inventory import move
        from provider.lifecycle import NumberState

        body: MoveIn = req.context.json
        try:
            target = NumberState(body.state)
        except ValueError:
            raise ApiError(f"state {body.state!r}: one of "
                           f"{', '.join(s.value for s in NumberState)}") from None
        with _mapped(), self.store.db() as db:
            row = move(db, number, target, actor=f"staff:{req.context.token.id}",
                       reason=body.reason, now_ms=_now_ms(), tenant=body.tenant)
        _ok(resp, _number_out(row))


class ProviderReview(_Provider):
    roles: ClassVar = {"POST": Role.STAFF}

    @spec.validate(json=ReviewIn, resp=_resp(ApplicationOut), tags=["audit"])
    def on_post(self, req: Any, resp: Any, app_id: str) -> None:
        """The auditor's verdict on one material."""
        from provider.applications import review

        body: ReviewIn = req.context.json
        with _mapped(), self.store.db() as db:
            app = review(db, app_id, body.item, accept=body.verdict == "accept",
                         reason=body.reason, actor=f"staff:{req.context.token.id}",
                         now_ms=_now_ms())
        _ok(resp, _app_out(app))


class ProviderDecision(_Provider):
    roles: ClassVar = {"POST": Role.STAFF}

    @spec.validate(json=DecisionIn, resp=_resp(ApplicationOut), tags=["audit"])
    def on_post(self, req: Any, resp: Any, app_id: str) -> None:
        """The audit's outcome: accept, return (materials to fix) or reject."""
        from provider.applications import decide

        body: DecisionIn = req.context.json
        with _mapped(), self.store.db() as db:
            app = decide(db, app_id, body.verdict, actor=f"staff:{req.context.token.id}",
                         reason=body.reason, now_ms=_now_ms())
        _ok(resp, _app_out(app))


class ProviderContract(_Provider):
    roles: ClassVar = {"POST": Role.STAFF}

    @spec.validate(json=ContractIn, resp=_resp(ContractOut), tags=["contracts"])
    def on_post(self, req: Any, resp: Any, app_id: str) -> None:
        """Record the signed contract of an accepted application."""
        from provider.applications import sign
        from provider.catalogue import load

        b: ContractIn = req.context.json
        with _mapped(), self.store.db() as db:
            c = sign(db, app_id, catalogue=load(), package=b.package, promotion=b.promotion,
                     term_years=b.term_years, auto_renew=b.auto_renew, sla_text=b.sla,
                     esign_ref=b.esign_ref, starts_on=b.starts_on,
                     actor=f"staff:{req.context.token.id}", now_ms=_now_ms())
        _ok(resp, ContractOut(**c.__dict__))


class ProviderOverdue(_Provider):
    roles: ClassVar = {"GET": Role.STAFF}

    @spec.validate(resp=_resp(ApplicationList), tags=["audit"])
    def on_get(self, req: Any, resp: Any) -> None:
        """Audits past their working-day deadline."""
        from provider.applications import overdue

        with _mapped(), self.store.db() as db:
            late = overdue(db, _now_ms())
        _ok(resp, ApplicationList(applications=[_app_out(a) for a in late]))


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class _RoutingMove(_Provider):
    """Suspend, resume or cancel: the inventory and the tenant's routing move together."""

    roles: ClassVar = {"POST": Role.STAFF}
    target = "active"

    @spec.validate(json=ReasonIn, resp=_resp(NumberOut), tags=["numbers"])
    def on_post(self, req: Any, resp: Any, number: str) -> None:
        """Move the number (suspension / resumption / cancellation); calls follow within the
        workers' refresh (1 s)."""
        from provider.activation import change
        from provider.inventory import get
        from provider.lifecycle import NumberState

        body: ReasonIn = req.context.json
        with _mapped(), self.store.db() as db:
            change(db, self.store.tenants(), number, NumberState(self.target),
                   actor=f"staff:{req.context.token.id}", reason=body.reason,
                   now_ms=_now_ms())
            row = get(db, number)
        _ok(resp, _number_out(row))


class ActivationIn(BaseModel):
    dtmf: str = Field("", pattern=r"^[0-9*#,]*$", description="keys the test call presses: 1,2")
    caller: str = Field("13800138000", pattern=r"^\+?[0-9]{3,20}$")


class ActivationOut(BaseModel):
    number: str
    tenant: str
    active: bool
    summary: str
    report: str


class ProviderActivation(_Provider):
    """Activate a contracted number: bound to its tenant's routing, the test call (拨测)
    placed through the switch this API was given (``--node``), active only if it passes."""

    roles: ClassVar = {"POST": Role.STAFF}

    @spec.validate(json=ActivationIn, resp=_resp(ActivationOut), tags=["numbers"])
    def on_post(self, req: Any, resp: Any, number: str) -> None:
        """Bind, place the test call, keep its report; 200 with active false when it failed."""
        from provider.activation import activate

        if self.store.dial is None:
            raise ApiError("this API places no test calls: serve it with --node (the switch "
                           "to call through), or use cc-core numbers activate",
                           error_id="not_configured")
        b: ActivationIn = req.context.json
        keys_ = [k for k in b.dtmf.split(",") if k]
        with _mapped(), self.store.db() as db:
            result = activate(db, self.store.tenants(), number,
                              actor=f"staff:{req.context.token.id}", now_ms=_now_ms(),
                              dial_test=lambda n: self.store.dial(n, keys_, b.caller))
        _ok(resp, ActivationOut(number=result.number, tenant=result.tenant,
                                active=result.active, summary=result.summary(),
                                report=result.report))


class ProviderSuspension(_RoutingMove):
    target = "suspended"


class ProviderResumption(_RoutingMove):
    target = "active"


class ProviderCancellation(_RoutingMove):
    target = "cancelled"


# ---- tenants ------------------------------------------------------------------------------------
class _Tenant:
    def __init__(self, store: _Store) -> None:
        self.store = store


class TenantNumbers(_Tenant):
    roles: ClassVar = {"GET": Role.SUPERVISOR}

    @spec.validate(resp=_resp(NumberList), tags=["numbers"])
    def on_get(self, req: Any, resp: Any, tenant: str) -> None:
        """The tenant's numbers, in every state."""
        with _mapped(), self.store.db() as db, db.transaction(write=False) as tx:
            from provider.inventory import _COLUMNS, _row

            rows = [_row(r) for r in tx.execute(
                f"SELECT {_COLUMNS} FROM numbers WHERE tenant = ? OR holder = ? "
                "ORDER BY number", (tenant, tenant)).fetchall()]
        _ok(resp, NumberList(numbers=[_number_out(r) for r in rows]))


class TenantReservation(_Tenant):
    roles: ClassVar = {"POST": Role.SUPERVISOR}

    @spec.validate(json=ReserveIn, resp=_resp(NumberOut), tags=["numbers"])
    def on_post(self, req: Any, resp: Any, tenant: str, number: str) -> None:
        """Reserve an available number for this tenant (409 if another holds it)."""
        from provider.inventory import reserve

        body: ReserveIn = req.context.json
        with _mapped(), self.store.db() as db:
            row = reserve(db, number, holder=tenant, ttl_s=body.ttl_s, now_ms=_now_ms())
        _ok(resp, _number_out(row))


class TenantApplications(_Tenant):
    roles: ClassVar = {"GET": Role.SUPERVISOR, "POST": Role.SUPERVISOR}

    @spec.validate(resp=_resp(ApplicationList), tags=["applications"])
    def on_get(self, req: Any, resp: Any, tenant: str) -> None:
        """The tenant's applications."""
        from provider.applications import get_application

        with _mapped(), self.store.db() as db:
            with db.transaction(write=False) as tx:
                ids = [r[0] for r in tx.execute("SELECT id FROM applications WHERE tenant = ? "
                                                "ORDER BY created_ms", (tenant,)).fetchall()]
            apps = [get_application(db, i) for i in ids]
        _ok(resp, ApplicationList(applications=[_app_out(a) for a in apps]))

    @spec.validate(json=ApplicationIn, resp=_resp(ApplicationOut), tags=["applications"])
    def on_post(self, req: Any, resp: Any, tenant: str) -> None:
        """Apply for a number this tenant reserved."""
        from provider.applications import ApplicantKind, open_application

        b: ApplicationIn = req.context.json
        with _mapped(), self.store.db() as db:
            app = open_application(db, b.number, holder=tenant, tenant=tenant,
                                   kind=ApplicantKind(b.kind), name=b.name, now_ms=_now_ms())
        _ok(resp, _app_out(app))


class TenantApplication(_Tenant):
    roles: ClassVar = {"GET": Role.SUPERVISOR}

    @spec.validate(resp=_resp(ApplicationOut), tags=["applications"])
    def on_get(self, req: Any, resp: Any, tenant: str, app_id: str) -> None:
        """One of the tenant's applications."""
        with _mapped(), self.store.db() as db:
            app = _tenant_app(db, tenant, app_id)
        _ok(resp, _app_out(app))


class TenantMaterial(_Tenant):
    """PUT the scan itself as the body, with its Content-Type (PDF, JPEG or PNG)."""

    roles: ClassVar = {"PUT": Role.SUPERVISOR}
    max_body_bytes = 10 * 1024 * 1024

    @spec.validate(resp=_resp(ApplicationOut), tags=["applications"])
    def on_put(self, req: Any, resp: Any, tenant: str, app_id: str, item: str) -> None:
        """Send one material (the file is the body: application/pdf, image/jpeg, image/png)."""
        from provider.applications import add_material, get_application

        kind = MATERIAL_TYPES.get((req.content_type or "").split(";")[0].strip().lower())
        if kind is None:
            raise ApiError(f"Content-Type {req.content_type!r}: send the scan as "
                           f"{', '.join(MATERIAL_TYPES)}", error_id="unsupported_type")
        if not self.store.materials_root:
            raise ApiError("this API keeps no materials: serve it with --materials-root",
                           error_id="not_configured")
        content = req.bounded_stream.read()
        with _mapped(), self.store.db() as db:
            _tenant_app(db, tenant, app_id)
            add_material(db, app_id, item, content, claimed=kind,
                         root=Path(self.store.materials_root), now_ms=_now_ms())
            app = get_application(db, app_id)
        _ok(resp, _app_out(app))


class TenantSubmission(_Tenant):
    roles: ClassVar = {"POST": Role.SUPERVISOR}

    @spec.validate(resp=_resp(ApplicationOut), tags=["applications"])
    def on_post(self, req: Any, resp: Any, tenant: str, app_id: str) -> None:
        """Send the application to audit (every material needed)."""
        from provider.applications import submit

        with _mapped(), self.store.db() as db:
            _tenant_app(db, tenant, app_id)
            app = submit(db, app_id, actor=tenant, now_ms=_now_ms())
        _ok(resp, _app_out(app))


class TenantContracts(_Tenant):
    roles: ClassVar = {"GET": Role.SUPERVISOR}

    @spec.validate(resp=_resp(ContractList), tags=["contracts"])
    def on_get(self, req: Any, resp: Any, tenant: str) -> None:
        """The tenant's contracts."""
        cols = ("application_id, tenant, number, package, promotion, term_years, auto_renew, "
                "yearly_fee_fen, sla, esign_ref, starts_on")
        with _mapped(), self.store.db() as db, db.transaction(write=False) as tx:
            rows = tx.execute(f"SELECT {cols} FROM contracts WHERE tenant = ? ORDER BY "
                              "signed_ms", (tenant,)).fetchall()
        _ok(resp, ContractList(contracts=[ContractOut(
            application_id=r[0], tenant=r[1], number=r[2], package=r[3], promotion=r[4],
            term_years=int(r[5]), auto_renew=bool(r[6]), yearly_fee_fen=int(r[7]), sla=r[8],
            esign_ref=r[9], starts_on=r[10]) for r in rows]))


def add_routes(app: Any, records: str | None, materials_root: str | None,
               redis: Any = None, dial: Any = None) -> None:
    store = _Store(records, materials_root, redis, dial)
    app.add_route(f"{P}/numbers", ProviderNumbers(store))
    app.add_route(f"{P}/numbers/import", ProviderImport(store))
    app.add_route(f"{P}/numbers/{{number}}", ProviderNumber(store))
    app.add_route(f"{P}/numbers/{{number}}/moves", ProviderMoves(store))
    app.add_route(f"{P}/numbers/{{number}}/activation", ProviderActivation(store))
    app.add_route(f"{P}/numbers/{{number}}/suspension", ProviderSuspension(store))
    app.add_route(f"{P}/numbers/{{number}}/resumption", ProviderResumption(store))
    app.add_route(f"{P}/numbers/{{number}}/cancellation", ProviderCancellation(store))
    app.add_route(f"{P}/applications/overdue", ProviderOverdue(store))
    app.add_route(f"{P}/applications/{{app_id}}/reviews", ProviderReview(store))
    app.add_route(f"{P}/applications/{{app_id}}/decision", ProviderDecision(store))
    app.add_route(f"{P}/applications/{{app_id}}/contract", ProviderContract(store))
    app.add_route(f"{T}/numbers", TenantNumbers(store))
    app.add_route(f"{T}/numbers/{{number}}/reservation", TenantReservation(store))
    app.add_route(f"{T}/applications", TenantApplications(store))
    app.add_route(f"{T}/applications/{{app_id}}", TenantApplication(store))
    app.add_route(f"{T}/applications/{{app_id}}/materials/{{item}}", TenantMaterial(store))
    app.add_route(f"{T}/applications/{{app_id}}/submission", TenantSubmission(store))
    app.add_route(f"{T}/contracts", TenantContracts(store))
