"""The shipped catalogue reads, prices in fen, and a broken one says what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from cc_core.errors import ConfigError
from provider.catalogue import load
from provider.grading import Grade


def test_the_shipped_catalogue_has_the_four_packages_of_the_product() -> None:
    cat = load()
    fees = {p.name: p.yearly_fee_fen for p in cat.packages.values()}
    assert fees == {"小微": 60000, "中小": 80000, "创业": 120000, "热销": 180000}
    promo = cat.promotions["popular-3y"]
    assert (promo.package, promo.yearly_fee_fen, promo.term_years) == ("popular", 100000, 3)


def test_premium_numbers_sell_only_with_the_dearer_packages() -> None:
    cat = load()
    assert not cat.allows(Grade.S, "micro") and cat.allows(Grade.S, "popular")
    assert cat.allows(Grade.C, "micro")


@pytest.mark.parametrize(("broken", "message"), [
    ("packages: {}\ngrades: {}\n", "packages"),
    ("packages:\n  p: {name: x, yearly_fee_fen: 1.5, included_minutes: 1, "
     "rate_fen_per_minute: {mobile: 1, landline: 1}}\n", "yearly_fee_fen"),
    ("packages:\n  p: {name: x, yearly_fee_fen: 100, included_minutes: 1, "
     "rate_fen_per_minute: {mobile: 1, landline: 1}, services: [fax]}\n"
     "grades: {S: {selection_fee_fen: 0, packages: [p]}}\n", "unknown services"),
    ("packages:\n  p: {name: x, yearly_fee_fen: 100, included_minutes: 1, "
     "rate_fen_per_minute: {mobile: 1, landline: 1}}\n"
     "grades: {S: {selection_fee_fen: 0, packages: [p]}}\n", "grade A has no entry"),
])
def test_a_broken_catalogue_names_the_place_and_the_problem(tmp_path: Path, broken: str,
                                                            message: str) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load(path)
