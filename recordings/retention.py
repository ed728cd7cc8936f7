"""``cc-core recordings purge [--dry-run]``: delete recordings past their tenant's retention.

What is deleted: a file of the layout's exact shape (``<tenant>/<yyyy>/<mm>/<dd>/<uuid>.wav``)
under the root, of a tenant whose retention is known and not "forever", older than that
retention by *both* its recording start (the index, else the end of the day in its path) and
its modification time; then its index row. An index row whose file is already gone is deleted
once expired.

What is never touched: anything that is not a regular file of that shape (foreign files,
other extensions), symlinks (files or folders: never followed, never deleted), anything whose
real path leaves the root, recordings of a tenant not configured here, and any file younger
than its retention by either clock. Each is counted in the summary.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from recordings import index
from recordings.layout import OutsideRoot, Root, check_name
from records.db import Database

DAY_MS = 86_400_000
FOREVER = None


@dataclass(frozen=True)
class TenantRetention:
    days: int | None          # None: forever
    timezone: str


@dataclass
class PurgeSummary:
    dry_run: bool = False
    deleted_files: int = 0
    deleted_bytes: int = 0
    deleted_rows: int = 0
    kept_young: int = 0
    kept_forever: int = 0
    unknown_tenant: int = 0
    foreign: int = 0
    symlinks: int = 0
    outside_root: int = 0
    errors: int = 0

    def table(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        rows = [
            (f"recordings {verb}", f"{self.deleted_files} ({self.deleted_bytes} bytes)"),
            (f"index rows {verb}", str(self.deleted_rows)),
            ("kept: within retention", str(self.kept_young)),
            ("kept: retention forever", str(self.kept_forever)),
            ("left: tenant not configured", str(self.unknown_tenant)),
            ("left: not a recording (foreign)", str(self.foreign)),
            ("left: symlinks (never followed)", str(self.symlinks)),
            ("left: outside the root", str(self.outside_root)),
            ("errors (see log)", str(self.errors)),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _day_end_ms(name: str, timezone: str) -> int:
    found = check_name(name)
    day = datetime(int(found["y"]), int(found["m"]), int(found["d"]), tzinfo=ZoneInfo(timezone))
    return int((datetime.combine(day.date(), time(), day.tzinfo) + timedelta(days=1))
               .timestamp() * 1000)


def _walk(root: Root, summary: PurgeSummary) -> list[Path]:
    """Regular files under the root; symlinks counted and left alone."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root.path, followlinks=False):
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                summary.symlinks += 1
                dirnames.remove(d)
        for f in filenames:
            path = Path(dirpath) / f
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                summary.symlinks += 1
            elif stat.S_ISREG(mode):
                files.append(path)
            else:
                summary.foreign += 1
    return files


def purge(db: Database, root: Root, retention: Callable[[str], TenantRetention | None], *,
          now_ms: int, dry_run: bool = False,
          progress: Callable[[int, int], None] | None = None) -> PurgeSummary:
    summary = PurgeSummary(dry_run=dry_run)
    if not root.path.is_dir():
        return summary
    files = _walk(root, summary)
    with db.transaction(write=False) as tx:
        rows = {r.name: r for r in index.all_rows(tx)}
    seen: set[str] = set()
    total = len(files) + len(rows)
    done = 0
    for path in files:
        done += 1
        if progress is not None:
            progress(done, total)
        name = root.name_of(path)
        if name is None:
            summary.foreign += 1
            continue
        seen.add(name)
        tenant = check_name(name)["tenant"]
        rule = retention(tenant)
        if rule is None:
            summary.unknown_tenant += 1
            continue
        if rule.days is FOREVER:
            summary.kept_forever += 1
            continue
        cutoff = now_ms - rule.days * DAY_MS
        row = rows.get(name)
        started = row.started_ms if row is not None else _day_end_ms(name, rule.timezone)
        try:
            real = root.inside(path)
            st = os.lstat(real)
        except OutsideRoot:
            summary.outside_root += 1
            continue
        except OSError:
            summary.errors += 1
            continue
        if started >= cutoff or int(st.st_mtime * 1000) >= cutoff:
            summary.kept_young += 1
            continue
        if not dry_run:
            try:
                os.unlink(real)
            except OSError:
                summary.errors += 1
                continue
        summary.deleted_files += 1
        summary.deleted_bytes += st.st_size
        if row is not None:
            summary.deleted_rows += _delete_row(db, row, dry_run)
    for name, row in rows.items():
        done += 1
        if progress is not None:
            progress(done, total)
        if name in seen:
            continue
        rule = retention(row.tenant)
        if rule is None or rule.days is FOREVER:
            continue
        if row.started_ms < now_ms - rule.days * DAY_MS:
            # Its file is gone already: the row alone is expired.
            summary.deleted_rows += _delete_row(db, row, dry_run)
    return summary


def _delete_row(db: Database, row: index.Recording, dry_run: bool) -> int:
    if dry_run:
        return 1
    with db.transaction() as tx:
        return index.delete(tx, row.tenant, row.call_uuid)
