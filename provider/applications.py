"""Applications for a 400 number, from the applicant's materials to a signed contract.

    draft --submit--> under_audit --accept--> accepted --sign--> (contract; number contracted)
                      under_audit --return--> returned --submit--> under_audit
                      under_audit --reject--> rejected (number back on the shelf)
    draft | returned --withdraw--> withdrawn (number back on the shelf)

The number moves with it (``provider.lifecycle``): reserved -> applied when the application is
opened, -> under_audit on submission, back to applied when the audit returns the materials,
-> contracted at signing, -> available on rejection or withdrawal. Every change is one
transaction with the number's move, so nothing is half-written.

Materials: each applicant kind has its checklist (real-name rules, product.md "Life cycle"); an
item is missing, submitted, rejected (with a reason) or accepted. A file is stored under
``<root>/<tenant>/applications/<id>/<item>.<ext>``: the name is the project's, never the
user's, and the content must be what its type says (a PDF starts ``%PDF-``, a JPEG with
FF D8 FF, a PNG with its signature), at most ``MAX_FILE_BYTES``.

The audit is due ``AUDIT_WORKING_DAYS`` working days after submission, on the official
calendar (``provider.sla``); ``overdue`` lists those past it.
"""

from __future__ import annotations

import enum
import hashlib
import re
import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cc_core.errors import CcCoreError
from provider import sla
from provider.catalogue import Catalogue
from provider.grading import Grade
from provider.inventory import current_in, move_in
from provider.lifecycle import NumberState
from records.db import Database

AUDIT_WORKING_DAYS = 3
MAX_FILE_BYTES = 10 * 1024 * 1024
TZ = ZoneInfo("Asia/Shanghai")


class ApplicantKind(enum.StrEnum):
    ENTERPRISE = "enterprise"
    SOLE_TRADER = "sole_trader"


CHECKLIST: dict[ApplicantKind, tuple[str, ...]] = {
    ApplicantKind.ENTERPRISE: ("business_licence", "legal_representative_id", "handler_id",
                               "bank_account_licence", "application_form"),
    ApplicantKind.SOLE_TRADER: ("id_card", "business_licence", "application_form"),
}


class AppState(enum.StrEnum):
    DRAFT = "draft"
    UNDER_AUDIT = "under_audit"
    RETURNED = "returned"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    CONTRACTED = "contracted"


class ItemStatus(enum.StrEnum):
    MISSING = "missing"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    ACCEPTED = "accepted"


class ApplicationError(CcCoreError):
    error_id = "applications.invalid"
    exit_code = 2


# Content signatures of the file types an applicant may send.
_SIGNATURES = {"pdf": (b"%PDF-",), "jpg": (b"\xff\xd8\xff",), "png": (b"\x89PNG\r\n\x1a\n",)}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Application:
    id: str
    number: str
    tenant: str
    applicant_kind: ApplicantKind
    applicant_name: str
    state: AppState
    created_ms: int
    submitted_ms: int | None
    due_ms: int | None
    decided_ms: int | None
    decided_by: str
    reason: str
    materials: dict[str, tuple[ItemStatus, str]]   # item -> (status, reason)


_APP_COLS = ("id, number, tenant, applicant_kind, applicant_name, state, created_ms, "
             "submitted_ms, due_ms, decided_ms, decided_by, reason")


def _load(tx: Any, app_id: str) -> Application:
    r = tx.execute(f"SELECT {_APP_COLS} FROM applications WHERE id = ?", (app_id,)).fetchone()
    if r is None:
        raise ApplicationError(f"no application {app_id!r}: check the id "
                               "(cc-core application list)")
    items = tx.execute("SELECT item, status, reason FROM application_materials WHERE "
                       "application_id = ? ORDER BY item", (app_id,)).fetchall()
    return Application(r[0], r[1], r[2], ApplicantKind(r[3]), r[4], AppState(r[5]), int(r[6]),
                       None if r[7] is None else int(r[7]), None if r[8] is None else int(r[8]),
                       None if r[9] is None else int(r[9]), r[10], r[11],
                       {i: (ItemStatus(s), why) for i, s, why in items})


def get_application(db: Database, app_id: str) -> Application:
    with db.transaction(write=False) as tx:
        return _load(tx, app_id)


def _expect(app: Application, *states: AppState) -> None:
    if app.state not in states:
        raise ApplicationError(f"application {app.id} is {app.state}: this needs it "
                               f"{' or '.join(states)}")


def _set(tx: Any, app_id: str, now_ms: int, **fields: Any) -> None:
    cols = ", ".join(f"{k} = ?" for k in fields)
    tx.execute(f"UPDATE applications SET {cols} WHERE id = ?", (*fields.values(), app_id))


def open_application(db: Database, number: str, *, holder: str, tenant: str,
                     kind: ApplicantKind, name: str, now_ms: int) -> Application:
    """An application for a number ``holder`` reserved; ``tenant`` is the account it will
    belong to. The number becomes applied."""
    if not _ID.match(tenant):
        raise ApplicationError(f"tenant id {tenant!r}: letters, digits, - and _ only")
    if not name.strip():
        raise ApplicationError("the applicant's name is empty: give the registered name")
    app_id = f"app-{uuidlib.uuid4().hex[:12]}"
    with db.transaction() as tx:
        row = current_in(tx, number, now_ms)
        if row.state is not NumberState.RESERVED or row.holder != holder:
            raise ApplicationError(
                f"number {number} is {row.state}"
                + (f" (held by {row.holder})" if row.holder else "")
                + f": reserve it for {holder} first (cc-core numbers reserve)")
        move_in(tx, row, NumberState.APPLIED, actor=holder, reason=f"application {app_id}",
              now_ms=now_ms, holder=holder, tenant=tenant)
        tx.execute(f"INSERT INTO applications ({_APP_COLS}) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, '', '')",
                   (app_id, number, tenant, kind.value, name.strip(), AppState.DRAFT.value,
                    now_ms))
        for item in CHECKLIST[kind]:
            tx.execute("INSERT INTO application_materials (application_id, item, status, "
                       "updated_ms) VALUES (?, ?, ?, ?)",
                       (app_id, item, ItemStatus.MISSING.value, now_ms))
        return _load(tx, app_id)


def file_type(content: bytes) -> str | None:
    for ext, heads in _SIGNATURES.items():
        if any(content.startswith(h) for h in heads):
            return ext
    return None


def add_material(db: Database, app_id: str, item: str, content: bytes, *, claimed: str,
                 root: Path, now_ms: int) -> Path:
    """Store one material file. ``claimed`` is the type the sender says it is (pdf, jpg,
    png): the content must be that type. Returns where it was stored."""
    claimed = claimed.lower().lstrip(".").replace("jpeg", "jpg")
    if claimed not in _SIGNATURES:
        raise ApplicationError(f"file type {claimed!r}: send a PDF, JPEG or PNG scan")
    if len(content) > MAX_FILE_BYTES:
        raise ApplicationError(f"{item}: {len(content)} bytes, over the "
                               f"{MAX_FILE_BYTES // (1024 * 1024)} MB a material may have")
    if not content:
        raise ApplicationError(f"{item}: the file is empty")
    actual = file_type(content)
    if actual != claimed:
        raise ApplicationError(f"{item}: the file claims to be {claimed} but its content is "
                               f"{'not a PDF, JPEG or PNG' if actual is None else actual}: "
                               "send the scan itself")
    with db.transaction() as tx:
        app = _load(tx, app_id)
        _expect(app, AppState.DRAFT, AppState.RETURNED)
        if item not in app.materials:
            raise ApplicationError(f"{item!r} is not on the checklist of a "
                                   f"{app.applicant_kind} applicant: "
                                   f"{', '.join(CHECKLIST[app.applicant_kind])}")
        base = (root / app.tenant / "applications" / app.id).resolve()
        if not base.is_relative_to(root.resolve()):
            raise ApplicationError(f"tenant {app.tenant!r} cannot be stored under {root}")
        base.mkdir(parents=True, exist_ok=True)
        path = base / f"{item}.{claimed}"
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(content)
        tmp.replace(path)
        tx.execute("UPDATE application_materials SET status = ?, reason = '', file_path = ?, "
                   "size = ?, sha256 = ?, updated_ms = ? WHERE application_id = ? AND item = ?",
                   (ItemStatus.SUBMITTED.value, str(path), len(content),
                    hashlib.sha256(content).hexdigest(), now_ms, app_id, item))
    return path


def submit(db: Database, app_id: str, *, actor: str, now_ms: int) -> Application:
    """Send the application to audit: every item must be submitted or accepted."""
    with db.transaction() as tx:
        app = _load(tx, app_id)
        _expect(app, AppState.DRAFT, AppState.RETURNED)
        lacking = [f"{i} ({s})" for i, (s, _) in app.materials.items()
                   if s in (ItemStatus.MISSING, ItemStatus.REJECTED)]
        if lacking:
            raise ApplicationError(f"application {app_id} cannot go to audit: still needed: "
                                   f"{', '.join(lacking)}")
        submitted = datetime.fromtimestamp(now_ms / 1000, UTC)
        due = sla.due(submitted, AUDIT_WORKING_DAYS, TZ)
        row = current_in(tx, app.number, now_ms)
        move_in(tx, row, NumberState.UNDER_AUDIT, actor=actor, reason=f"application {app_id} "
              "submitted", now_ms=now_ms, holder=row.holder)
        _set(tx, app_id, now_ms, state=AppState.UNDER_AUDIT.value, submitted_ms=now_ms,
             due_ms=int(due.timestamp() * 1000))
        return _load(tx, app_id)


def review(db: Database, app_id: str, item: str, *, accept: bool, reason: str, actor: str,
           now_ms: int) -> Application:
    """The auditor's verdict on one material (a rejection says why)."""
    if not accept and not reason.strip():
        raise ApplicationError(f"{item}: say why it is rejected (--reason)")
    with db.transaction() as tx:
        app = _load(tx, app_id)
        _expect(app, AppState.UNDER_AUDIT)
        if item not in app.materials:
            raise ApplicationError(f"{item!r} is not on this application's checklist")
        status = ItemStatus.ACCEPTED if accept else ItemStatus.REJECTED
        tx.execute("UPDATE application_materials SET status = ?, reason = ?, updated_ms = ? "
                   "WHERE application_id = ? AND item = ?",
                   (status.value, reason.strip(), now_ms, app_id, item))
        return _load(tx, app_id)


def decide(db: Database, app_id: str, verdict: str, *, actor: str, reason: str,
           now_ms: int) -> Application:
    """The audit's outcome: accept (every item accepted), return (to fix the rejected items)
    or reject (the number goes back on the shelf)."""
    with db.transaction() as tx:
        app = _load(tx, app_id)
        _expect(app, AppState.UNDER_AUDIT)
        row = current_in(tx, app.number, now_ms)
        if verdict == "accept":
            open_items = [i for i, (s, _) in app.materials.items() if s is not ItemStatus.ACCEPTED]
            if open_items:
                raise ApplicationError(f"application {app_id} cannot be accepted: not yet "
                                       f"accepted: {', '.join(open_items)}")
            state = AppState.ACCEPTED
        elif verdict == "return":
            if not any(s is ItemStatus.REJECTED for s, _ in app.materials.values()):
                raise ApplicationError("returning an application needs a rejected item that "
                                       "says what to fix (cc-core application review)")
            move_in(tx, row, NumberState.APPLIED, actor=actor, reason=f"materials returned: "
                  f"{reason}", now_ms=now_ms, holder=row.holder)
            state = AppState.RETURNED
        elif verdict == "reject":
            if not reason.strip():
                raise ApplicationError("a rejection needs a reason (--reason)")
            move_in(tx, row, NumberState.AVAILABLE, actor=actor, reason=f"application {app_id} "
                  f"rejected: {reason}", now_ms=now_ms)
            state = AppState.REJECTED
        else:
            raise ApplicationError(f"verdict {verdict!r}: accept, return or reject")
        _set(tx, app_id, now_ms, state=state.value, decided_ms=now_ms, decided_by=actor,
             reason=reason.strip())
        return _load(tx, app_id)


def overdue(db: Database, now_ms: int) -> list[Application]:
    with db.transaction(write=False) as tx:
        ids = [r[0] for r in tx.execute(
            "SELECT id FROM applications WHERE state = ? AND due_ms < ? ORDER BY due_ms",
            (AppState.UNDER_AUDIT.value, now_ms)).fetchall()]
        return [_load(tx, i) for i in ids]


@dataclass(frozen=True)
class Contract:
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


def sign(db: Database, app_id: str, *, catalogue: Catalogue, package: str, promotion: str = "",
         term_years: int = 1, auto_renew: bool = True, sla_text: str, esign_ref: str,
         starts_on: str, actor: str, now_ms: int) -> Contract:
    """The contract of an accepted application: the package must be one the number's grade
    sells with; a promotion fixes the price for its term. The number becomes contracted."""
    if package not in catalogue.packages:
        raise ApplicationError(f"package {package!r}: one of {', '.join(catalogue.packages)}")
    fee = catalogue.packages[package].yearly_fee_fen
    if promotion:
        promo = catalogue.promotions.get(promotion)
        if promo is None or promo.package != package:
            raise ApplicationError(f"promotion {promotion!r} is not one of package {package}'s "
                                   f"({', '.join(p for p, x in catalogue.promotions.items() if x.package == package) or 'none'})")
        fee, term_years = promo.yearly_fee_fen, max(term_years, promo.term_years)
    if not esign_ref.strip():
        raise ApplicationError("the e-signature reference is empty: give the signing "
                               "service's document id")
    try:
        datetime.strptime(starts_on, "%Y-%m-%d")
    except ValueError:
        raise ApplicationError(f"starts_on {starts_on!r}: a date, YYYY-MM-DD") from None
    with db.transaction() as tx:
        app = _load(tx, app_id)
        _expect(app, AppState.ACCEPTED)
        row = current_in(tx, app.number, now_ms)
        if not catalogue.allows(Grade(row.grade), package):
            raise ApplicationError(
                f"number {row.number} is grade {row.grade}: it sells with "
                f"{', '.join(catalogue.grades[Grade(row.grade)].packages)}, not {package}")
        move_in(tx, row, NumberState.CONTRACTED, actor=actor, reason=f"contract {esign_ref}",
              now_ms=now_ms, tenant=app.tenant, holder=row.holder)
        tx.execute("INSERT INTO contracts (application_id, tenant, number, package, promotion, "
                   "term_years, auto_renew, yearly_fee_fen, sla, esign_ref, starts_on, "
                   "signed_ms, signed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (app_id, app.tenant, app.number, package, promotion, term_years,
                    int(auto_renew), fee, sla_text, esign_ref.strip(), starts_on, now_ms, actor))
        _set(tx, app_id, now_ms, state=AppState.CONTRACTED.value)
        # The tenant's billing account follows its contract, in the same commit: opened with
        # the package, or moved to it, from the contract's first day (billing rates by it),
        # with the promotion's fixed yearly fee for the contract's term.
        from billing import accounts
        from billing.errors import UnknownAccount

        try:
            accounts.set_package(tx, catalogue, app.tenant, package, starts_on, by=actor,
                                 at_ms=now_ms, promotion=promotion, term_years=term_years)
        except UnknownAccount:
            accounts.open_account(tx, catalogue, app.tenant, package, effective_on=starts_on,
                                  by=actor, at_ms=now_ms, promotion=promotion,
                                  term_years=term_years)
    return Contract(app_id, app.tenant, app.number, package, promotion, term_years, auto_renew,
                    fee, sla_text, esign_ref.strip(), starts_on)
