"""The PromQL of the shipped dashboards and alert rules, as a live test evaluates it.

Grafana's variables become what "All" selects; a variable's ``label_values(m, l)`` becomes the
PromQL Grafana runs for it; an alert's expression is also reduced to its *signal*, the part
before the comparison and the ``and``/``unless`` conditions (``x < 0.8 and y > 20`` -> ``x``),
which must return data whenever its metrics exist, while the alert itself is quiet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from metrics import grafana

RULES = Path(__file__).resolve().parents[2] / "metrics" / "prometheus" / "rules.yml"

# Grafana's macros and "All" of the boards' variables (allValue ".*").
SUBSTITUTIONS = {"$__rate_interval": "1m", "$__range": "1h", "$tenant": ".*", "$queue": ".*",
                 "$node": ".*"}
_LABEL_VALUES = re.compile(r"^label_values\((?P<m>.+),\s*(?P<l>\w+)\)$")
# Metric names: ours, and Prometheus' own `up`; never followed by "(" (a function).
_NAME = re.compile(r"(?<![\w\"])(cccore_[a-z0-9_]+|up)\b(?!\s*\()")
_SETOP = re.compile(r"\s(and|unless|or)\s")
_COMPARE = re.compile(r"\s(==|!=|>=|<=|>|<)\s")


@dataclass(frozen=True)
class Expr:
    where: str
    promql: str          # what is evaluated
    signal: str          # what must return data when its metrics exist

    @property
    def names(self) -> set[str]:
        """Every metric name the expression reads."""
        return set(_NAME.findall(self.promql))

    @property
    def signal_names(self) -> set[str]:
        return set(_NAME.findall(self.signal))


def defined_names() -> set[str]:
    """Every series name a worker can export (a labelled counter appears on its first
    increment, so a healthy stack does not show them all)."""
    from prometheus_client import CollectorRegistry

    from metrics.acd import AcdMetrics
    from metrics.callflow import CallFlowMetrics
    from metrics.esl import EslMetrics
    from metrics.lease import LeaseMetrics

    reg = CollectorRegistry()
    EslMetrics(reg)
    LeaseMetrics(reg)
    AcdMetrics(reg)
    CallFlowMetrics(reg).watch_live_calls(lambda: [])
    out = set()
    for fam in reg.collect():
        if fam.type == "counter":
            out.add(fam.name + "_total")
        elif fam.type == "histogram":
            out |= {f"{fam.name}_{s}" for s in ("bucket", "sum", "count")}
        else:
            out.add(fam.name)
    return out | {"up"}


def substitute(text: str) -> str:
    for k, v in SUBSTITUTIONS.items():
        text = text.replace(k, v)
    return text


def _depth0(text: str, pattern: re.Pattern[str]) -> int | None:
    """Where ``pattern`` first matches outside (), {}, [] and quotes; None if nowhere."""
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and pattern.match(text, i):
            return i
    return None


def _strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        inner, depth = text[1:-1], 0
        for ch in inner:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth < 0:
                return text          # "(a) and (b)": the parens are not one group
        text = inner.strip()
    return text


def signal(expr: str) -> str:
    text = " ".join(expr.split())
    while True:
        before = text
        text = _strip_parens(text)
        for pattern in (_SETOP, _COMPARE):
            at = _depth0(text, pattern)
            if at is not None:
                text = text[:at]
        if text == before:
            return text


def dashboard_exprs() -> list[Expr]:
    out = []
    for name, build in grafana.BOARDS.items():
        for where, raw in grafana.expressions(build()):
            promql = substitute(raw)
            m = _LABEL_VALUES.match(promql)
            if m:
                promql = f"count by ({m['l']}) ({m['m']})"
            out.append(Expr(f"{name}: {where}", promql, promql))
    return out


def rule_exprs() -> list[Expr]:
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    out = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            expr = " ".join(str(rule["expr"]).split())
            out.append(Expr(f"rules.yml: {name}", expr, signal(expr)))
    return out
