"""Tenant configuration in Redis: applied whole and versioned, read by workers without restart.

Guarantees:
- A reader sees one applied version whole, never half of one. Each tenant's config is an
  immutable blob per version (``cc:{t:<tenant>}:config:v<N>``), written before anything points
  at it; then one key, the directory (``cc:{g}:directory``: version, tenant id -> blob version,
  400 number -> tenant id, global config), is replaced by a single SET in a script. A reader
  builds its view from one directory and the blobs it names, so the view is that version's.
  This needs no multi-key transaction across slots, so it holds on Redis Cluster too.
- Blobs are never changed, only added and pruned: the last ``KEEP_VERSIONS`` of a tenant stay,
  so a reader that read the directory just before a switch still finds the blobs it names (and
  if it is more than that many applies behind, it reads the directory again).
- A tenant removed from the directory is gone for readers at once; its blobs expire later.
- Two operators applying at the same time cannot lose each other's change: the swap only
  happens if the directory is still the one the change was computed against (else recomputed).

Layout of every key: ``cc_core/keys.py``.
"""

from __future__ import annotations

import difflib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import msgpack
from pydantic import ValidationError
from redis.exceptions import RedisError

from cc_core import keys
from cc_core.errors import CcCoreError, ConfigConflict, ConfigError, UnknownTenant
from cc_core.tenants.loader import LoadedConfig, canonical_yaml
from cc_core.tenants.model import GlobalConfig, NumberConfig, NumberStatus, Tenant

log = logging.getLogger(__name__)

KEEP_VERSIONS = 5               # blobs kept per tenant, the applied one included
REMOVED_TTL_S = 7 * 24 * 3600   # a removed tenant's blobs linger this long (history, undo)
APPLY_DEADLINE_S = 10.0         # how long to keep recomputing while other applies land first
READ_ATTEMPTS = 3               # directory re-reads when a blob it names is already pruned
GLOBAL = "_global"              # the global config's name in diffs


def _lua(name: str) -> str:
    return resources.files("cc_core").joinpath("lua", name).read_text(encoding="utf-8")


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


@dataclass(frozen=True)
class _Directory:
    """One applied version as stored in ``cc:{g}:directory``."""

    version: int
    tenants: dict[str, int]          # tenant id -> version of its blob
    numbers: dict[str, str]          # 400 number -> tenant id
    global_config: dict[str, Any]    # GlobalConfig.model_dump(mode="json")
    applied_at_ms: int = 0

    @classmethod
    def empty(cls) -> _Directory:
        return cls(0, {}, {}, GlobalConfig().model_dump(mode="json"))

    @classmethod
    def unpack(cls, raw: bytes) -> _Directory:
        d = _unpack(raw)
        return cls(int(d["version"]), {str(k): int(v) for k, v in d["tenants"].items()},
                   {str(k): str(v) for k, v in d["numbers"].items()}, d["global"],
                   int(d.get("applied_at_ms", 0)))

    def pack(self) -> bytes:
        return _pack({"version": self.version, "tenants": self.tenants, "numbers": self.numbers,
                      "global": self.global_config, "applied_at_ms": self.applied_at_ms})


def _read_directory(redis: Any) -> _Directory:
    raw = redis.get(keys.directory())
    return _Directory.unpack(raw) if raw is not None else _Directory.empty()


def _tenant_from_blob(raw: bytes) -> Tenant:
    # Revalidated on read: a blob written by an older release is checked against today's model
    # rather than trusted, and the frozen model is what the call flow gets.
    return Tenant.model_validate(_unpack(raw))


@dataclass(frozen=True)
class ApplyResult:
    version: int                     # the version now applied (unchanged if nothing written)
    previous_version: int            # the version the change was computed against
    written: bool                    # False: dry run, or nothing changed
    dry_run: bool
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()    # tenants (and "_global") whose config changes
    diffs: dict[str, str] = field(default_factory=dict)   # name -> unified diff, old -> new

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _diff(name: str, old: str, new: str, old_version: int) -> str:
    before = f"{name} (version {old_version})" if old else f"{name} (absent)"
    after = f"{name} (new)" if new else f"{name} (removed)"
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True), before, after))


class TenantStore:
    """The writer's side: apply a loaded configuration as a new version; show what is applied."""

    def __init__(self, redis: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self._swap = redis.register_script(_lua("config_swap.lua"))
        self._clock = clock

    # -- reading what is applied ------------------------------------------------------------

    def _blobs(self, refs: dict[str, int]) -> dict[str, Tenant | None]:
        pipe = self.redis.pipeline(transaction=False)
        names = list(refs)
        for tid in names:
            pipe.get(keys.tenant_config(tid, refs[tid]))
        return {tid: None if raw is None else _tenant_from_blob(raw)
                for tid, raw in zip(names, pipe.execute(), strict=True)}

    def applied_version(self) -> int:
        return int(self.redis.get(keys.directory_version()) or 0)

    def show(self, tenant_id: str) -> str:
        """The canonical YAML of ``tenant_id`` as applied (``_global``: the global config);
        ``UnknownTenant`` if it is not applied."""
        for _ in range(READ_ATTEMPTS):
            directory = _read_directory(self.redis)
            if directory.version == 0:
                raise UnknownTenant("no tenant configuration has been applied to this Redis "
                                    "yet; apply one with: cc-core config apply PATH")
            applied = time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                    time.gmtime(directory.applied_at_ms / 1000))
            head = f"# {{}}: configuration version {directory.version}, applied {applied}\n"
            if tenant_id == GLOBAL:
                return head.format("global config") + canonical_yaml(
                    GlobalConfig.model_validate(directory.global_config))
            if tenant_id not in directory.tenants:
                known = ", ".join(sorted(directory.tenants)) or "none"
                raise UnknownTenant(f"tenant {tenant_id!r} is not in the applied configuration "
                                    f"(version {directory.version}; tenants: {known}; "
                                    f"{GLOBAL}: the global config)")
            tenant = self._blobs({tenant_id: directory.tenants[tenant_id]})[tenant_id]
            if tenant is not None:
                return head.format(f"tenant {tenant_id}") + canonical_yaml(tenant)
            # Applied again between the two reads and pruned: read the new directory.
        raise CcCoreError(f"tenant {tenant_id!r}: the applied directory names a config blob "
                          "that is missing from Redis; apply the configuration again")

    def applied_tenant(self, tenant_id: str) -> Tenant:
        """The applied configuration of ``tenant_id``; ``UnknownTenant`` if none is."""
        for _ in range(READ_ATTEMPTS):
            directory = _read_directory(self.redis)
            if tenant_id not in directory.tenants:
                known = ", ".join(sorted(directory.tenants)) or "none"
                raise UnknownTenant(f"tenant {tenant_id!r} is not in the applied configuration "
                                    f"(version {directory.version}; tenants: {known}): apply "
                                    "its config first (cc-core config apply PATH)")
            tenant = self._blobs({tenant_id: directory.tenants[tenant_id]})[tenant_id]
            if tenant is not None:
                return tenant
        raise CcCoreError(f"tenant {tenant_id!r}: the applied directory names a config blob "
                          "that is missing from Redis; apply the configuration again")

    def set_number(self, tenant_id: str, number: str, status: NumberStatus,
                   source: str = "<number life cycle>") -> ApplyResult:
        """Give ``number`` to ``tenant_id`` with ``status`` (or change its status), as a new
        configuration version: calls route by it at once. The rest of the tenant's config is
        kept; a number another tenant holds is refused (``ConfigError``)."""
        tenant = self.applied_tenant(tenant_id)
        numbers = dict(tenant.numbers)
        numbers[number] = (numbers[number].model_copy(update={"status": status})
                           if number in numbers else NumberConfig(status=status))
        updated = Tenant.model_validate({**tenant.model_dump(mode="json"),
                                         "numbers": {n: c.model_dump(mode="json")
                                                     for n, c in numbers.items()}})
        loaded = LoadedConfig(tenants={tenant_id: updated}, global_config=GlobalConfig(),
                              sources={tenant_id: Path(source)}, complete=False)
        return self.apply(loaded)

    # -- applying ---------------------------------------------------------------------------

    def apply(self, loaded: LoadedConfig, *, dry_run: bool = False) -> ApplyResult:
        """Make ``loaded`` the applied configuration (a folder: all of it; a single file: its
        tenants replace theirs and the rest stays). Returns what changed, with diffs; with
        ``dry_run`` (or when nothing changed) nothing is written. Raises ``ConfigError`` if the
        result would give a 400 number to two tenants, nothing written."""
        deadline = time.monotonic() + APPLY_DEADLINE_S
        while True:
            result = self._try_apply(loaded, dry_run)
            if result is not None:
                return result
            if time.monotonic() > deadline:
                raise ConfigConflict(f"other applies kept landing for {APPLY_DEADLINE_S:g} s "
                                     "while this one was being prepared; nothing of this one "
                                     "was written: run it again")
            # Each round one contender wins; jitter keeps the rest from colliding in lockstep.
            time.sleep(random.uniform(0.005, 0.05))

    def _try_apply(self, loaded: LoadedConfig, dry_run: bool) -> ApplyResult | None:
        base = _read_directory(self.redis)
        if loaded.complete:
            kept: dict[str, int] = {}
        else:
            kept = {t: v for t, v in base.tenants.items() if t not in loaded.tenants}
        self._check_numbers(loaded, base, kept)
        new_global = loaded.global_config.model_dump(mode="json") \
            if loaded.complete or loaded.global_source is not None else base.global_config

        old = self._blobs({t: v for t, v in base.tenants.items() if t in loaded.tenants})
        added: list[str] = []
        changed: list[str] = []
        diffs: dict[str, str] = {}
        for tid, tenant in loaded.tenants.items():
            new_text = canonical_yaml(tenant)
            before = old.get(tid)
            old_text = canonical_yaml(before) if before is not None else ""
            if old_text != new_text:
                (changed if tid in base.tenants else added).append(tid)
                diffs[tid] = _diff(tid, old_text, new_text, base.version)
        removed = sorted(set(base.tenants) - set(loaded.tenants) - set(kept))
        for tid in removed:
            gone = self._blobs({tid: base.tenants[tid]})[tid]
            diffs[tid] = _diff(tid, canonical_yaml(gone) if gone else "", "", base.version)
        if new_global != base.global_config:
            changed.append(GLOBAL)
            diffs[GLOBAL] = _diff(GLOBAL, canonical_yaml(GlobalConfig(**base.global_config)),
                                  canonical_yaml(GlobalConfig(**new_global)), base.version)

        def result(version: int, written: bool) -> ApplyResult:
            return ApplyResult(version=version, previous_version=base.version, written=written,
                               dry_run=dry_run, added=tuple(sorted(added)),
                               removed=tuple(removed), changed=tuple(sorted(changed)),
                               diffs=dict(sorted(diffs.items())))

        if dry_run or not (added or changed or removed):
            return result(base.version, False)

        version = int(self.redis.incr(keys.config_seq()))
        if version <= base.version:  # the counter was lost (e.g. deleted by hand): catch up
            version = int(self.redis.incrby(keys.config_seq(), base.version - version + 1))
        fresh = set(added) | (set(changed) - {GLOBAL})
        pipe = self.redis.pipeline(transaction=False)
        for tid in sorted(fresh):
            pipe.set(keys.tenant_config(tid, version),
                     _pack(loaded.tenants[tid].model_dump(mode="json")))
            pipe.zadd(keys.tenant_config_versions(tid), {str(version): version})
            pipe.persist(keys.tenant_config_versions(tid))  # re-added after a removal
        pipe.execute()

        refs = dict(kept)
        for tid in loaded.tenants:
            refs[tid] = version if tid in fresh else base.tenants[tid]
        numbers = {n: t for n, t in base.numbers.items() if t in kept}
        for tid, tenant in loaded.tenants.items():
            numbers.update(dict.fromkeys(tenant.numbers, tid))
        directory = _Directory(version, dict(sorted(refs.items())), dict(sorted(numbers.items())),
                               new_global, int(self._clock() * 1000))
        swapped = self._swap(keys=[keys.directory(), keys.directory_version()],
                             args=[str(base.version), str(version), directory.pack(),
                                   keys.CONFIG_CHANNEL])
        if int(swapped[0]) != 1:
            log.info("tenant config: version %s landed first, recomputing", swapped[1])
            return None  # this attempt's blobs are tracked in their zsets and pruned later
        self._prune(directory, removed)
        return result(version, True)

    def _check_numbers(self, loaded: LoadedConfig, base: _Directory,
                       kept: dict[str, int]) -> None:
        """A single file may not take a 400 number that an applied tenant it leaves in place
        still holds (within one load, the loader has checked this already)."""
        problems = []
        for tid, tenant in loaded.tenants.items():
            for number in tenant.numbers:
                holder = base.numbers.get(number)
                if holder is not None and holder in kept:
                    problems.append(
                        f"  {loaded.sources[tid]}: at numbers.{number}: {number} belongs to "
                        f"applied tenant {holder!r} (version {base.version}); remove it there "
                        f"first, or apply the whole folder (got {number!r})")
        if problems:
            raise ConfigError("\n".join(["nothing was applied:", *problems]))

    def _prune(self, directory: _Directory, removed: list[str]) -> None:
        # Only versions below the one just referenced are candidates: any later directory
        # refers to that blob or a newer one, so a referenced blob is never deleted.
        pipe = self.redis.pipeline(transaction=False)
        for tid, ref in directory.tenants.items():
            if ref != directory.version:
                continue
            zkey = keys.tenant_config_versions(tid)
            below = [int(v) for v in self.redis.zrangebyscore(zkey, "-inf", f"({ref}")]
            old = below[: max(0, len(below) - (KEEP_VERSIONS - 1))]
            for v in old:
                pipe.delete(keys.tenant_config(tid, v))
            if old:
                pipe.zrem(zkey, *[str(v) for v in old])
        for tid in removed:
            zkey = keys.tenant_config_versions(tid)
            for v in self.redis.zrange(zkey, 0, -1):
                pipe.expire(keys.tenant_config(tid, int(v)), REMOVED_TTL_S)
            pipe.expire(zkey, REMOVED_TTL_S)
        pipe.execute()


# -- the reader's side (workers) ---------------------------------------------------------------

@dataclass(frozen=True)
class _Snapshot:
    version: int
    refs: dict[str, int]
    tenants: dict[str, Tenant]
    numbers: dict[str, tuple[Tenant, NumberConfig]]
    global_config: GlobalConfig
    applied_at_ms: int = 0

    def newer_than(self, other: _Snapshot) -> bool:
        # A Redis that lost its data restarts version numbers at 1: a configuration applied
        # after that is newer by its time even with a lower number.
        return self.version >= other.version or self.applied_at_ms > other.applied_at_ms > 0


_EMPTY = _Snapshot(0, {}, {}, {}, GlobalConfig())


class TenantDirectory:
    """A worker's view of the applied tenant configuration, for the call path.

    Lookups read an immutable in-memory snapshot; at most every ``refresh_s`` one caller checks
    the version with a single GET (the others meanwhile answer from the snapshot, never
    waiting), and a new version is loaded whole (only the tenants whose blob changed are
    fetched again) and swapped in by one assignment. So a lookup costs no Redis round trip
    unless ``refresh_s`` has passed, and every answer comes from one applied version. While
    Redis cannot be reached, the last snapshot keeps answering."""

    def __init__(self, redis: Any, *, refresh_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.refresh_s = refresh_s
        self._clock = clock
        self._snap: _Snapshot | None = None
        self._checked_at = -math.inf
        self._checking = False

    @property
    def version(self) -> int:
        return self._current().version

    def lookup(self, dnis: str) -> tuple[Tenant, NumberConfig] | None:
        """The tenant holding this 400 number and the number's own settings, or None."""
        return self._current().numbers.get(dnis)

    def tenant(self, tenant_id: str) -> Tenant | None:
        return self._current().tenants.get(tenant_id)

    def global_config(self) -> GlobalConfig:
        return self._current().global_config

    def all_tenants(self) -> list[Tenant]:
        return list(self._current().tenants.values())

    def refresh(self) -> int:
        """Check for a new version now (e.g. on a ``cc:config`` message); returns the version."""
        return self._check(self._clock()).version

    def _current(self) -> _Snapshot:
        snap = self._snap
        if snap is not None and (self._checking or
                                 self._clock() - self._checked_at < self.refresh_s):
            return snap
        return self._check(self._clock())

    def _check(self, now: float) -> _Snapshot:
        self._checking = True
        try:
            raw = self.redis.get(keys.directory_version())
            self._checked_at = now
            snap = self._snap
            if snap is None or int(raw or 0) != snap.version:
                loaded = self._load(snap or _EMPTY)
                # Threads sharing this object may finish loads out of order: never go back.
                current = self._snap
                if current is None or loaded.newer_than(current):
                    self._snap = current = loaded
                return current
            return snap
        except (RedisError, CcCoreError) as exc:
            if self._snap is None:
                raise
            self._checked_at = now
            log.warning("tenant config: cannot load a new version (%s); "
                        "keeping version %s", exc, self._snap.version)
            return self._snap
        finally:
            self._checking = False

    def _load(self, previous: _Snapshot) -> _Snapshot:
        for _ in range(READ_ATTEMPTS):
            raw = self.redis.get(keys.directory())
            if raw is None:
                return _EMPTY
            directory = _Directory.unpack(raw)
            tenants = {t: previous.tenants[t] for t, v in directory.tenants.items()
                       if previous.refs.get(t) == v}
            missing = [t for t in directory.tenants if t not in tenants]
            pipe = self.redis.pipeline(transaction=False)
            for tid in missing:
                pipe.get(keys.tenant_config(tid, directory.tenants[tid]))
            blobs = pipe.execute() if missing else []
            if any(b is None for b in blobs):
                continue  # pruned by later applies while we read: take the newer directory
            try:
                for tid, blob in zip(missing, blobs, strict=True):
                    tenants[tid] = _tenant_from_blob(blob)
                global_config = GlobalConfig.model_validate(directory.global_config)
            except ValidationError as exc:
                raise ConfigError(f"the applied tenant configuration (version "
                                  f"{directory.version}) does not fit this release's model: "
                                  f"{exc}; apply it again with this release") from exc
            numbers = {}
            for number, tid in directory.numbers.items():
                tenant = tenants.get(tid)
                cfg = tenant.numbers.get(number) if tenant is not None else None
                if tenant is not None and cfg is not None:
                    numbers[number] = (tenant, cfg)
            log.info("tenant config: version %s loaded (%s tenants, %s fetched)",
                     directory.version, len(tenants), len(missing))
            return _Snapshot(directory.version, dict(directory.tenants), tenants, numbers,
                             global_config, directory.applied_at_ms)
        raise CcCoreError(f"tenant config: the directory kept moving past its blobs for "
                          f"{READ_ATTEMPTS} reads; is something applying in a loop?")
