"""``make bench``: every throughput figure of the project, measured side by side in one run.

Figures are printed, never asserted: targets are compared and reported, not tested.
Set BENCH_QUICK=1 for a short smoke run.
"""

from __future__ import annotations

import os
import sys
import time


def _table(rows: list[dict[str, object]]) -> str:
    if not rows:
        return "(no figures)"
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


def main() -> int:
    quick = os.environ.get("BENCH_QUICK") == "1"
    from bench import (
        bench_acd,
        bench_acd_flow,
        bench_callflow,
        bench_kpi,
        bench_metrics,
        bench_parser,
        bench_records,
        bench_sim,
    )

    status = 0
    for title, mod in (("ESL parsing: greenswitch 0.0.19 vs esl_handlers", bench_parser),
                       ("FreeSWITCH simulator", bench_sim),
                       ("Call flow", bench_callflow),
                       ("ACD dispatch latency", bench_acd),
                       ("ACD end to end: capacity, join -> originate, ring-all", bench_acd_flow),
                       ("Call records: consumer into SQLite and PostgreSQL", bench_records),
                       ("KPI collector scrape", bench_kpi),
                       ("Cost of the metrics on the hot paths", bench_metrics)):
        t0 = time.monotonic()
        print(f"\n== {title}", flush=True)
        try:
            rows = mod.run(quick=quick)
        except Exception as exc:  # noqa: BLE001 - report every bench even if one breaks
            print(f"bench failed: {exc!r}", file=sys.stderr)
            status = 1
            continue
        # A section returns one table, or several keyed by their caption.
        tables = rows if isinstance(rows, dict) else {"": rows}
        for i, (caption, table) in enumerate(tables.items()):
            print(("\n" if i else "") + (f"{caption}\n" if caption else "") + _table(table))
        for note in getattr(mod, "NOTES", ()):
            print(note)
        print(f"({time.monotonic() - t0:.1f} s)", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
