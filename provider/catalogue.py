"""The catalogue the provider sells from, as data (``provider/catalogue.yaml``): packages with
their yearly fee, included minutes, per-minute rates and value-added services, promotions (a
package at another price for a contract term), value-added services with their monthly fee
when taken outside a package, and what a number of each grade costs to choose
and which packages it may be sold with. Money is integer fen."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cc_core.errors import ConfigError
from provider.grading import Grade

Fen = Annotated[int, Field(ge=0, le=10**11)]
SERVICES = ("ivr", "call_reports", "recording", "voicemail", "regional_answering", "callback")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Package(_Model):
    name: str = Field(min_length=1)
    yearly_fee_fen: Fen
    included_minutes: int = Field(ge=0)
    rate_fen_per_minute: dict[str, Fen]
    services: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known(self) -> Package:
        unknown = sorted(set(self.services) - set(SERVICES))
        if unknown:
            raise ValueError(f"unknown services {unknown}: use {', '.join(SERVICES)}")
        missing = {"mobile", "landline"} - set(self.rate_fen_per_minute)
        if missing:
            raise ValueError(f"rate_fen_per_minute needs {', '.join(sorted(missing))}")
        return self


class Promotion(_Model):
    package: str
    yearly_fee_fen: Fen
    term_years: int = Field(ge=1, le=10)


class Service(_Model):
    """A value-added service sold on its own: its monthly fee (a package that includes it
    charges nothing more for it)."""

    name: str = Field(min_length=1)
    monthly_fee_fen: Fen


class GradeTier(_Model):
    selection_fee_fen: Fen
    packages: list[str] = Field(min_length=1)


class Catalogue(_Model):
    packages: dict[str, Package] = Field(min_length=1)
    promotions: dict[str, Promotion] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    grades: dict[Grade, GradeTier]

    @model_validator(mode="after")
    def _references(self) -> Catalogue:
        for g in Grade:
            if g not in self.grades:
                raise ValueError(f"grades: grade {g} has no entry (every grade needs one)")
        for name, promo in self.promotions.items():
            if promo.package not in self.packages:
                raise ValueError(f"promotions.{name}: no package {promo.package!r}")
        unknown = sorted(set(self.services) - set(SERVICES))
        if unknown:
            raise ValueError(f"services: unknown {unknown}: use {', '.join(SERVICES)}")
        for g, tier in self.grades.items():
            for p in tier.packages:
                if p not in self.packages:
                    raise ValueError(f"grades.{g}: no package {p!r}")
        return self

    def allows(self, grade: Grade, package: str) -> bool:
        return package in self.grades[grade].packages


def load(path: Path | None = None) -> Catalogue:
    """The catalogue at ``path`` (default: the shipped one); ConfigError says what to fix."""
    where = str(path) if path else "provider/catalogue.yaml"
    text = (path.read_text(encoding="utf-8") if path else
            resources.files("provider").joinpath("catalogue.yaml").read_text(encoding="utf-8"))
    try:
        return Catalogue.model_validate(yaml.safe_load(text) or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"{where}: {loc}: {first['msg']}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from None
