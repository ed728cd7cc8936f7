"""``cc-core recordings check``: does every finished recording hold what the switch said, and
fit its call?

For each index row (one tenant's, or all): the file must be under the root, present, more
than a WAV header, a PCM WAV whose length matches the switch's ``record_ms`` and size its
``record_file_size``, and no longer than the call's billed time; the call record must name the
same file. A recording the switch never reported stopping is reported too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recordings import index
from recordings.layout import OutsideRoot, Root
from recordings.wav import HEADER_BYTES, NotWav, read_info
from records.db import Database

# Frames are written in 20 ms packets and the switch's stamps are its own: a little slack.
SLACK_MS = 1000


@dataclass(frozen=True)
class Problem:
    tenant: str
    call_uuid: str
    name: str
    what: str


@dataclass
class CheckReport:
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def table(self) -> str:
        lines = [f"{self.checked} recordings checked, {len(self.problems)} problems"]
        lines += [f"  {p.tenant} {p.call_uuid} {p.name}: {p.what}" for p in self.problems]
        return "\n".join(lines)


def check(db: Database, root: Root, tenant: str | None = None) -> CheckReport:
    with db.transaction(write=False) as tx:
        rows = index.all_rows(tx, tenant)
        calls: dict[str, tuple[int, str | None]] = {}
        for row in rows:
            tx.execute("SELECT billsec, recording_path FROM call_records "
                       "WHERE tenant = ? AND call_uuid = ?", (row.tenant, row.call_uuid))
            found = tx.fetchone()
            if found is not None:
                calls[row.call_uuid] = (int(found[0] or 0), found[1])
    report = CheckReport()
    for row in rows:
        report.checked += 1
        for what in _problems(root, row, calls.get(row.call_uuid)):
            report.problems.append(Problem(row.tenant, row.call_uuid, row.name, what))
    return report


def _problems(root: Root, row: index.Recording,
              call: tuple[int, str | None] | None) -> list[str]:
    out = []
    if call is None:
        out.append("no call record for this recording")
    elif call[1] != row.name:
        out.append(f"the call record names {call[1]!r}, not this file")
    if not row.finished:
        out.append("never stopped: the switch sent no RECORD_STOP")
    try:
        path = root.resolve(row.name, row.tenant)
    except OutsideRoot as exc:
        return [*out, str(exc)]
    if not path.exists():
        return [*out, f"missing: no file at {path}"]
    size = path.stat().st_size
    if size <= HEADER_BYTES:
        return [*out, f"empty: {size} bytes, no audio"]
    try:
        info = read_info(str(path))
    except NotWav as exc:
        return [*out, f"not a WAV file ({exc})"]
    if row.size is not None and size != row.size:
        out.append(f"size {size} bytes, the switch reported {row.size}")
    if row.duration_ms is not None and abs(info.ms - row.duration_ms) > SLACK_MS:
        out.append(f"holds {info.ms} ms of audio, the switch reported {row.duration_ms} ms")
    if call is not None and info.ms > call[0] * 1000 + SLACK_MS:
        out.append(f"holds {info.ms} ms of audio, longer than the call ({call[0]} s billed)")
    if info.channels != row.channels:
        out.append(f"{info.channels} channel(s), recorded as {row.channels}")
    return out
