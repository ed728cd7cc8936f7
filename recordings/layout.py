"""Where recordings live, and the only way from a stored name back to a file.

A recording's name is relative to the recordings root: ``<tenant>/<yyyy>/<mm>/<dd>/<uuid>.wav``
with the date of the call's start in the tenant's time zone. The switch is given the absolute
path; the index and the call record keep the relative name, so moving the root moves nothing
in the store.

``Root.resolve`` is what every reader goes through (download, purge, check): the name must have
the layout's exact shape (no ``..``, no absolute path, no other extension), and the file it
names, symlinks followed, must still be inside the root. A name that fails either is refused,
never joined to the filesystem as it was given.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

TENANT = r"[a-z0-9][a-z0-9_-]{0,31}"
CALL_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
NAME = re.compile(rf"^(?P<tenant>{TENANT})/(?P<y>\d{{4}})/(?P<m>\d{{2}})/(?P<d>\d{{2}})/"
                  rf"(?P<uuid>{CALL_UUID})\.wav$")
DEFAULT_ROOT = "/var/lib/cc-core/recordings"


class OutsideRoot(ValueError):
    """A name that is not a recording's, or a file that is not under the recordings root."""


def relative_name(tenant: str, call_uuid: str, at_ms: int, timezone: str) -> str:
    """The name of a call's recording, from its tenant, UUID and start (epoch ms)."""
    if not re.fullmatch(TENANT, tenant):
        raise ValueError(f"tenant {tenant!r} cannot name a recordings folder")
    if not re.fullmatch(CALL_UUID, call_uuid):
        raise ValueError(f"call UUID {call_uuid!r} cannot name a recording")
    day = datetime.fromtimestamp(at_ms / 1000, UTC).astimezone(ZoneInfo(timezone))
    return f"{tenant}/{day:%Y}/{day:%m}/{day:%d}/{call_uuid}.wav"


def check_name(name: str) -> re.Match[str]:
    found = NAME.fullmatch(name)
    if found is None:
        raise OutsideRoot(f"{name!r} is not a recording's name "
                          "(<tenant>/<yyyy>/<mm>/<dd>/<call-uuid>.wav)")
    return found


class Root:
    """The recordings root of this install (``recordings.root``, ``CC_RECORDINGS_ROOT``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.abspath(path))

    def __repr__(self) -> str:
        return f"Root({str(self.path)!r})"

    def absolute(self, name: str) -> str:
        """The path the switch writes ``name`` to (never followed here)."""
        check_name(name)
        return str(self.path / name)

    def real(self) -> Path:
        return Path(os.path.realpath(self.path))

    def resolve(self, name: str, tenant: str | None = None) -> Path:
        """The file of ``name``, symlinks followed, refused unless inside the root (and of
        ``tenant`` when given)."""
        found = check_name(name)
        if tenant is not None and found["tenant"] != tenant:
            raise OutsideRoot(f"{name!r} is not a recording of tenant {tenant}")
        return self.inside(self.path / name)

    def inside(self, path: Path) -> Path:
        """``path`` with symlinks followed, refused when that leaves the root."""
        real_root = self.real()
        real = Path(os.path.realpath(path))
        if real != real_root and real_root not in real.parents:
            raise OutsideRoot(f"{path} leads outside the recordings root {real_root}")
        return real

    def name_of(self, path: Path) -> str | None:
        """The recording name of a file found under the root; None for anything else (a
        foreign file, a name that does not have the layout's shape)."""
        try:
            rel = path.relative_to(self.path).as_posix()
        except ValueError:
            return None
        return rel if NAME.fullmatch(rel) else None
