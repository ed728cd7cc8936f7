"""An application from reservation to contract on both SQL stores: checklists per applicant
kind, material files checked by content and kept under the tenant's folder, the audit's
working-day clock and its overdue list, returns and rejections, and the contract's package
rules. Every step moves the number with it, in the same transaction."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from provider.applications import (
    ApplicantKind,
    ApplicationError,
    AppState,
    ItemStatus,
    add_material,
    decide,
    get_application,
    open_application,
    overdue,
    review,
    sign,
    submit,
)
from provider.catalogue import load
from provider.inventory import get, import_numbers, reserve
from provider.lifecycle import NumberState
from records.db import Database
from records.migrate import migrate

TZ = ZoneInfo("Asia/Shanghai")
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
JPG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
# Wednesday 30 September 2026, 15:00 in Shanghai: the National Day holiday follows.
T0 = int(datetime(2026, 9, 30, 15, 0, tzinfo=TZ).timestamp() * 1000)


@pytest.fixture
def db(store: Database, tmp_path: Path) -> Database:
    migrate(store)
    f = tmp_path / "numbers.csv"
    f.write_text("4008888888\n4006137982\n", encoding="utf-8")
    import_numbers(store, f, now_ms=T0)
    return store


def _opened(db: Database, number: str = "4006137982",
            kind: ApplicantKind = ApplicantKind.SOLE_TRADER) -> str:
    reserve(db, number, holder="applicant-1", ttl_s=72 * 3600, now_ms=T0)
    app = open_application(db, number, holder="applicant-1", tenant="acme", kind=kind,
                           name="张三餐馆", now_ms=T0)
    return app.id


def _all_submitted(db: Database, app_id: str, root: Path) -> None:
    for item in get_application(db, app_id).materials:
        add_material(db, app_id, item, PDF, claimed="pdf", root=root, now_ms=T0)


def test_each_applicant_kind_has_its_checklist_and_the_number_becomes_applied(
        db: Database) -> None:
    app = get_application(db, _opened(db))
    assert sorted(app.materials) == ["application_form", "business_licence", "id_card"]
    assert {s for s, _ in app.materials.values()} == {ItemStatus.MISSING}
    row = get(db, "4006137982")
    assert (row.state, row.tenant) == (NumberState.APPLIED, "acme")
    enterprise = get_application(db, _opened(db, "4008888888", ApplicantKind.ENTERPRISE))
    assert sorted(enterprise.materials) == ["application_form", "bank_account_licence",
                                            "business_licence", "handler_id",
                                            "legal_representative_id"]


def test_an_application_needs_the_applicant_s_own_reservation(db: Database) -> None:
    reserve(db, "4006137982", holder="someone-else", ttl_s=3600, now_ms=T0)
    with pytest.raises(ApplicationError, match="held by someone-else"):
        open_application(db, "4006137982", holder="applicant-1", tenant="acme",
                         kind=ApplicantKind.ENTERPRISE, name="x", now_ms=T0)


def test_materials_are_checked_by_content_and_stored_under_the_tenant(
        db: Database, tmp_path: Path) -> None:
    app_id = _opened(db)
    root = tmp_path / "materials"
    path = add_material(db, app_id, "id_card", JPG, claimed="jpeg", root=root, now_ms=T0)
    assert path == root / "acme" / "applications" / app_id / "id_card.jpg"
    assert path.read_bytes() == JPG
    with pytest.raises(ApplicationError, match="claims to be pdf but its content is jpg"):
        add_material(db, app_id, "business_licence", JPG, claimed="pdf", root=root, now_ms=T0)
    with pytest.raises(ApplicationError, match="claims to be pdf but its content is not"):
        add_material(db, app_id, "business_licence", b"<html>", claimed="pdf", root=root,
                     now_ms=T0)
    with pytest.raises(ApplicationError, match="not on the checklist"):
        add_material(db, app_id, "../../etc/passwd", PDF, claimed="pdf", root=root, now_ms=T0)
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == ["id_card.jpg"]
    status = get_application(db, app_id).materials
    assert status["id_card"][0] is ItemStatus.SUBMITTED
    assert status["business_licence"][0] is ItemStatus.MISSING


def test_submission_needs_every_item_and_starts_the_working_day_clock(
        db: Database, tmp_path: Path) -> None:
    app_id = _opened(db)
    with pytest.raises(ApplicationError, match="still needed: application_form .missing."):
        submit(db, app_id, actor="applicant-1", now_ms=T0)
    _all_submitted(db, app_id, tmp_path)
    app = submit(db, app_id, actor="applicant-1", now_ms=T0)
    # 3 working days after Wed 30 Sep: Thu 8 Oct, Fri 9 Oct, Sat 10 Oct (make-up day).
    due = datetime.fromtimestamp(app.due_ms / 1000, TZ)  # type: ignore[operator]
    assert due.date().isoformat() == "2026-10-10"
    assert get(db, "4006137982").state is NumberState.UNDER_AUDIT
    assert overdue(db, int(datetime(2026, 10, 10, 23, 0, tzinfo=TZ).timestamp() * 1000)) == []
    late = overdue(db, int(datetime(2026, 10, 11, 9, 0, tzinfo=TZ).timestamp() * 1000))
    assert [a.id for a in late] == [app_id]


def test_a_returned_application_goes_back_then_through_to_a_contract(
        db: Database, tmp_path: Path) -> None:
    app_id = _opened(db)
    _all_submitted(db, app_id, tmp_path)
    submit(db, app_id, actor="applicant-1", now_ms=T0)
    review(db, app_id, "id_card", accept=False, reason="blurred", actor="auditor", now_ms=T0)
    with pytest.raises(ApplicationError, match="not yet accepted"):
        decide(db, app_id, "accept", actor="auditor", reason="", now_ms=T0)
    app = decide(db, app_id, "return", actor="auditor", reason="id card blurred", now_ms=T0)
    assert app.state is AppState.RETURNED and app.materials["id_card"] == (
        ItemStatus.REJECTED, "blurred")
    assert get(db, "4006137982").state is NumberState.APPLIED
    add_material(db, app_id, "id_card", JPG, claimed="jpg", root=tmp_path, now_ms=T0)
    submit(db, app_id, actor="applicant-1", now_ms=T0)
    for item in get_application(db, app_id).materials:
        review(db, app_id, item, accept=True, reason="", actor="auditor", now_ms=T0)
    decide(db, app_id, "accept", actor="auditor", reason="ok", now_ms=T0)
    contract = sign(db, app_id, catalogue=load(), package="micro", sla_text="99.9%",
                    esign_ref="esign-123", starts_on="2026-10-12", actor="sales-1", now_ms=T0)
    assert (contract.yearly_fee_fen, contract.term_years) == (60000, 1)
    row = get(db, "4006137982")
    assert (row.state, row.tenant) == (NumberState.CONTRACTED, "acme")
    assert get_application(db, app_id).state is AppState.CONTRACTED
    # The billing account follows the contract: opened with its package from its first day.
    from billing import accounts

    with db.transaction(write=False) as tx:
        account = accounts.load(tx, "acme")
    assert account.packages == [("2026-10-12", "micro")]


def test_a_premium_number_cannot_be_sold_with_a_cheap_package_and_a_promotion_sets_the_price(
        db: Database, tmp_path: Path) -> None:
    app_id = _opened(db, "4008888888", ApplicantKind.ENTERPRISE)
    _all_submitted(db, app_id, tmp_path)
    submit(db, app_id, actor="applicant-1", now_ms=T0)
    for item in get_application(db, app_id).materials:
        review(db, app_id, item, accept=True, reason="", actor="auditor", now_ms=T0)
    decide(db, app_id, "accept", actor="auditor", reason="ok", now_ms=T0)
    with pytest.raises(ApplicationError, match="grade S: it sells with popular, not micro"):
        sign(db, app_id, catalogue=load(), package="micro", sla_text="99.9%",
             esign_ref="e-1", starts_on="2026-10-12", actor="sales-1", now_ms=T0)
    assert get(db, "4008888888").state is NumberState.UNDER_AUDIT, "nothing half-written"
    contract = sign(db, app_id, catalogue=load(), package="popular", promotion="popular-3y",
                    sla_text="99.9%", esign_ref="e-1", starts_on="2026-10-12",
                    actor="sales-1", now_ms=T0)
    assert (contract.yearly_fee_fen, contract.term_years) == (100000, 3)
    # the billing account bills the promotion's fixed fee for the term, then the list fee
    from datetime import UTC, datetime

    from billing import bills

    later = datetime(2030, 1, 1, tzinfo=UTC)
    yearly = [[(f["day"], f["amount_fen"]) for f in bills.bill(db, "acme", p, now=later).fees
               if f["kind"] == "yearly_fee"] for p in ("2026-10", "2028-10", "2029-10")]
    assert yearly == [[("2026-10-12", 100000)], [("2028-10-12", 100000)],
                      [("2029-10-12", 180000)]]


def test_a_rejected_application_puts_the_number_back_on_the_shelf(
        db: Database, tmp_path: Path) -> None:
    app_id = _opened(db)
    _all_submitted(db, app_id, tmp_path)
    submit(db, app_id, actor="applicant-1", now_ms=T0)
    with pytest.raises(ApplicationError, match="needs a reason"):
        decide(db, app_id, "reject", actor="auditor", reason=" ", now_ms=T0)
    decide(db, app_id, "reject", actor="auditor", reason="licence revoked", now_ms=T0)
    row = get(db, "4006137982")
    assert (row.state, row.tenant, row.holder) == (NumberState.AVAILABLE, "", "")
