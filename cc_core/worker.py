"""Worker processes: ``run()`` supervises N of them; ``python -m cc_core.worker`` is one worker.

The supervisor (``run``, plain Python, never monkey-patched) starts each worker as
``python -m cc_core.worker --index I`` with the validated config as JSON on its stdin (so the
ESL password never shows in ``ps``), each in its own session so a terminal's Ctrl-C reaches
the supervisor only and is forwarded once. It restarts a worker that dies, with backoff, and
gives up when one keeps dying. With no ``redis_url`` configured it starts a private
``redis-server`` for the children and stops it after the last child exits.

A worker is one gevent hub: it owns FreeSWITCH nodes by lease (``esl_handlers.nodes``), sends
commands to any node through its own links, serves Prometheus ``/metrics`` on the loopback,
writes a heartbeat key, and runs the handlers the composition root (``cc_core.app.build``)
registers on its dispatcher. First SIGTERM/SIGINT: warm stop (``ctx.draining``, leases
released so standbys take over at once, in-flight handlers finish within a bound); second:
cold stop (exit at once).
"""

from __future__ import annotations

if __name__ == "__main__":
    # A worker process: patch before anything imports socket, ssl or threading.
    from gevent import monkey

    monkey.patch_all()
    from metrics import native_locks

    native_locks()

import argparse  # noqa: E402 - after gevent's monkey-patching, on purpose
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gevent
import gevent.event
import gevent.pool

from cc_core import realtime
from cc_core.config import Config
from cc_core.errors import CcCoreError, ConfigError
from cc_core.idlegc import IdleCollector

log = logging.getLogger(__name__)

# ---- supervisor timing ----------------------------------------------------------------------
RESTART_BACKOFF_MIN_S = 0.5
RESTART_BACKOFF_MAX_S = 10.0
# A worker that dies this many times within the window is not restarted again: the supervisor
# stops everything and fails, rather than crash-loop quietly.
RESTART_LIMIT = 5
RESTART_WINDOW_S = 60.0
SUPERVISOR_TICK_S = 0.1
# ---- worker timing --------------------------------------------------------------------------
WARM_STOP_HANDLERS_S = 10.0   # in-flight handlers get this long after the leases are released
LINK_STOP_S = 2.0
HEARTBEAT_INTERVAL_S = 1.0
HEARTBEAT_TTL_MS = 3000       # three missed beats and the worker's key is gone
PARENT_CHECK_S = 1.0          # an orphaned worker (supervisor SIGKILLed) warm-stops this soon
# The supervisor waits for a warm-stopping worker this long before killing it.
WARM_STOP_BOUND_S = WARM_STOP_HANDLERS_S + LINK_STOP_S + 15.0
COLD_STOP_BOUND_S = 2.0
EXIT_COLD = 128 + signal.SIGTERM
EXIT_FAILED = 1
# Redis connections beyond the handler pool: leases, heartbeat, sweeps.
REDIS_POOL_SPARE = 16

AppFactory = Callable[["WorkerContext"], Any]


def _no_reconcile(node_name: str, channels: list[dict[str, Any]]) -> None:
    log.info("no reconcile hook registered; live calls left as they are",
             extra={"node": node_name, "channels": len(channels)})


if TYPE_CHECKING:
    import redis as redis_lib
    from prometheus_client import CollectorRegistry
    from redis.cluster import RedisCluster

    from esl_handlers.dispatch import Dispatcher
    from esl_handlers.link import NodeLink
    from esl_handlers.nodes import NodeManager


@dataclass
class WorkerContext:
    """What one worker process hands to the composition root (``app_factory(ctx)``).

    The app registers handlers on ``dispatcher``; the object it returns may offer the node
    manager's hooks (``reconcile``, ``sweep``, ``standby_events``, ``on_standby_event``,
    ``extra_events``: subscriptions added to the owner's, ``stop``). ``nodes`` and ``links`` are filled in right after the app is built, before any
    event flows; ``draining`` turns true when the worker stops taking new calls.
    """

    config: Config
    redis: redis_lib.Redis | RedisCluster   # cc_core.redisconn.connect: the URL's scheme picks
    worker_id: str
    index: int
    dispatcher: Dispatcher
    registry: CollectorRegistry
    group: gevent.pool.Group
    links: dict[str, NodeLink] = field(default_factory=dict)
    nodes: NodeManager | None = None
    draining: bool = False


# =============================================================================================
# Supervisor
# =============================================================================================
@dataclass
class _Child:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    deaths: list[float] = field(default_factory=list)
    restart_at: float | None = None


def run(config: Config, workers: int, *, app_factory: AppFactory | None = None) -> int:
    """Run ``workers`` worker processes until SIGTERM/SIGINT; returns the exit status
    (0 after a warm stop in which every worker stopped cleanly)."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1 (got {workers})")
    app_spec = _factory_spec(app_factory)
    if not logging.getLogger().handlers:
        from cc_core import logs

        logs.setup(config.log_level)
    if config.realtime_priority is not None:
        # Refused here, before anything starts, rather than in every worker's restart.
        realtime.check(config.realtime_priority)
    private = None
    if config.redis_url is None:
        from cc_core.redis_server import PrivateRedis

        private = PrivateRedis(realtime_priority=config.realtime_priority).start()
        config = config.model_copy(update={"redis_url": private.url})
        log.info("private redis-server started", extra={"redis_url": private.url})
    try:
        return _Supervisor(config, workers, app_spec).run()
    finally:
        if private is not None:
            private.stop()


def _factory_spec(app_factory: AppFactory | None) -> str:
    """``module:qualname`` of the factory, for the children to import (it cannot be pickled
    across ``python -m``)."""
    if app_factory is None:
        return ""
    module = getattr(app_factory, "__module__", None)
    qualname = getattr(app_factory, "__qualname__", "")
    if not module or module == "__main__" or not qualname or "<" in qualname:
        raise ConfigError("app_factory must be a module-level function (e.g. cc_core.app.build), "
                          f"got {app_factory!r}")
    return f"{module}:{qualname}"


class _Supervisor:
    def __init__(self, config: Config, workers: int, app_spec: str) -> None:
        self.config = config
        self.app_spec = app_spec
        self.children = [_Child(i) for i in range(workers)]
        self.signals = 0
        self.wake = threading.Event()
        self.failed = False

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for child in self.children:
                self._spawn(child)
            while self.signals == 0 and not self.failed:
                self.wake.wait(SUPERVISOR_TICK_S)
                self.wake.clear()
                self._reap_and_restart()
            return self._shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signals += 1
        if self.signals == 1:
            log.info("warm stop requested; forwarding to workers", extra={"signal": signum})
        else:
            log.warning("cold stop requested; forwarding to workers", extra={"signal": signum})
        self._forward(signal.SIGTERM)
        self.wake.set()

    def _forward(self, sig: int) -> None:
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                try:
                    child.proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    def _spawn(self, child: _Child) -> None:
        args = [sys.executable, "-m", "cc_core.worker", "--index", str(child.index),
                "--supervisor-pid", str(os.getpid())]
        if self.app_spec:
            args += ["--app", self.app_spec]
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, start_new_session=True)
        assert proc.stdin is not None
        try:
            proc.stdin.write(self.config.model_dump_json().encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it died at once; reaped and restarted like any other death
        child.proc = proc
        child.restart_at = None
        if self.config.realtime_priority is not None:
            try:
                realtime.apply(proc.pid, self.config.realtime_priority)
            except CcCoreError as exc:
                # Allowed at start (run checked it): a worker at the default policy still
                # serves its calls, which is better than a supervisor that gives up on them.
                log.error("worker runs at the default scheduling: %s", exc,
                          extra={"index": child.index, "pid": proc.pid})
        log.info("worker started", extra={"index": child.index, "pid": proc.pid,
                                          "realtime_priority": self.config.realtime_priority})

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        for child in self.children:
            proc = child.proc
            if proc is not None and proc.poll() is not None:
                child.proc = None
                child.deaths = [t for t in child.deaths if now - t < RESTART_WINDOW_S] + [now]
                if len(child.deaths) > RESTART_LIMIT:
                    log.error("worker keeps dying; giving up",
                              extra={"index": child.index, "exit_code": proc.returncode,
                                     "deaths": len(child.deaths), "window_s": RESTART_WINDOW_S})
                    self.failed = True
                    return
                delay = min(RESTART_BACKOFF_MAX_S,
                            RESTART_BACKOFF_MIN_S * 2 ** (len(child.deaths) - 1))
                child.restart_at = now + delay
                log.warning("worker died; restarting", extra={
                    "index": child.index, "exit_code": proc.returncode, "pid": proc.pid,
                    "restart_in_s": delay})
            if child.proc is None and child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)

    def _shutdown(self) -> int:
        if self.failed and self.signals == 0:
            self.signals = 1
            self._forward(signal.SIGTERM)
        deadline = time.monotonic() + WARM_STOP_BOUND_S
        cold_deadline: float | None = None
        while True:
            alive = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
            if not alive:
                break
            now = time.monotonic()
            if self.signals >= 2 and cold_deadline is None:
                cold_deadline = now + COLD_STOP_BOUND_S
            if now >= deadline or (cold_deadline is not None and now >= cold_deadline):
                for c in alive:
                    log.error("worker did not stop in time; killing",
                              extra={"index": c.index, "pid": c.proc.pid if c.proc else None})
                    if c.proc is not None:
                        c.proc.kill()
                        c.proc.wait()
                break
            self.wake.wait(SUPERVISOR_TICK_S)
            self.wake.clear()
        codes = [c.proc.returncode for c in self.children if c.proc is not None]
        clean = not self.failed and self.signals == 1 and all(code == 0 for code in codes)
        log.info("workers stopped", extra={"exit_codes": codes, "clean": clean})
        return 0 if clean else EXIT_FAILED


# =============================================================================================
# Worker process
# =============================================================================================
class _WorkerIdFilter(logging.Filter):
    def __init__(self, worker_id: str, index: int) -> None:
        super().__init__()
        self.worker_id = worker_id
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker_id = self.worker_id
        record.worker = self.index
        return True


def _load_factory(spec: str) -> AppFactory:
    if spec:
        module_name, _, qualname = spec.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        factory: AppFactory = obj
        return factory
    from cc_core import app

    default: AppFactory = app.build
    return default


class Worker:
    """One worker process's runtime. Call ``run()`` from the process's main greenlet."""

    def __init__(self, config: Config, index: int, worker_id: str,
                 app_factory: AppFactory | None = None, parent_pid: int | None = None) -> None:
        self.config = config
        # The supervisor's pid as it said (``--supervisor-pid``), else this process's parent
        # now: a supervisor killed before the watch starts would otherwise have handed this
        # process to init already, and the watch would compare against init for ever.
        self.parent_pid = parent_pid or os.getppid()
        self.index = index
        self.worker_id = worker_id
        self.app_factory = app_factory
        self.exit_code = 0
        self._signals = 0
        self._metrics_server: Any = None
        self.metrics_port: int | None = None
        self._stopping: gevent.Greenlet | None = None
        self.collector = IdleCollector()

    def run(self) -> int:
        # Imported here, not at the top: the supervisor imports this module too and needs none
        # of the ESL stack.
        from prometheus_client import CollectorRegistry, start_http_server

        from cc_core import redisconn
        from esl_handlers import keys
        from esl_handlers.dispatch import Dispatcher
        from esl_handlers.nodes import NodeManager
        from metrics.esl import EslMetrics
        from metrics.lease import LeaseMetrics

        cfg = self.config
        if not cfg.redis_url:
            raise ConfigError("a worker needs redis_url (cc-core run starts a private Redis "
                              "and passes it on when none is configured)")
        self._done = gevent.event.Event()
        group = _EscalatingGroup(self._on_greenlet_failure)
        ttl_s = cfg.esl.lease_ttl_ms / 1000
        url = cfg.redis_url
        # A blocking pool sized above the handler pool: under overload a handler waits for a
        # connection instead of failing with "Too many connections" and stranding its call.
        pool_size = cfg.esl.redis_pool_size or cfg.esl.handler_pool_size + REDIS_POOL_SPARE
        self.redis = redisconn.connect(url, pool_size=pool_size,
                                       pool_timeout=cfg.esl.redis_pool_timeout_s,
                                       socket_timeout=5, socket_connect_timeout=2)
        # The leases get their own client with short timeouts: a renewal must not queue behind
        # the app's traffic or wait out a 5 s socket timeout longer than the lease itself.
        lease_timeout = max(0.1, min(1.0, ttl_s / 3))
        lease_redis = redisconn.connect(url, socket_timeout=lease_timeout,
                                        socket_connect_timeout=lease_timeout)
        registry = CollectorRegistry()
        esl_metrics = EslMetrics(registry)
        dispatcher = Dispatcher(queue_size=cfg.esl.queue_size, pool_size=cfg.esl.handler_pool_size,
                                metrics=esl_metrics)
        self.dispatcher = dispatcher
        ctx = WorkerContext(config=cfg, redis=self.redis, worker_id=self.worker_id,
                            index=self.index, dispatcher=dispatcher, registry=registry,
                            group=group)
        self.ctx = ctx
        self.lease_metrics = LeaseMetrics(registry)
        # The app comes first: its hooks go to the node manager, and what it needs of the
        # manager (links, ownership) it reads from ctx when a call arrives, after start-up.
        factory = self.app_factory or _load_factory("")
        self.app = app = factory(ctx)
        reconcile = getattr(app, "reconcile", None)
        self.nodes = NodeManager(
            cfg, lease_redis, owner_id=self.worker_id, dispatcher=dispatcher,
            reconcile=reconcile or _no_reconcile,
            sweep=getattr(app, "sweep", None),
            standby_events=getattr(app, "standby_events", ()),
            on_standby_event=getattr(app, "on_standby_event", None),
            extra_events=getattr(app, "extra_events", ()),
            metrics=self.lease_metrics, esl_metrics=esl_metrics, group=group)
        ctx.nodes = self.nodes
        ctx.links = dict(self.nodes.links)  # type: ignore[arg-type]  # NodeLinks by factory

        port = cfg.metrics_port + self.index if cfg.metrics_port else 0
        self._metrics_server, _ = start_http_server(port, addr=cfg.metrics_host, registry=registry)
        self.metrics_port = int(self._metrics_server.server_port)
        log.info("metrics listening", extra={"metrics_host": cfg.metrics_host,
                                             "metrics_port": self.metrics_port})

        for sig in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(sig, self._on_signal, sig)
        self._heartbeat_key = keys.worker(self.worker_id)
        group.spawn(self._heartbeat)
        group.spawn(self._watch_parent, self.parent_pid)
        # What start-up built (modules, config, the app) lives as long as the process: frozen
        # out of the collector's sight, a full collection walks only what calls create (~20
        # ms before, a p99 on its own); and collections run when the loop is idle, not in
        # the middle of a burst of call events (cc_core.idlegc).
        self.collector.start()
        self.nodes.start()
        log.info("worker running", extra={"nodes": [n.name for n in cfg.nodes], "pid": os.getpid(),
                                          "lease_ttl_ms": cfg.esl.lease_ttl_ms})
        self._done.wait()
        return self.exit_code

    # ---- background -----------------------------------------------------------------------
    def _heartbeat(self) -> None:
        from redis.exceptions import RedisError

        while not self._done.is_set():
            try:
                self._beat()
            except RedisError as exc:
                log.warning("heartbeat failed", extra={"error": repr(exc)})
            gevent.sleep(HEARTBEAT_INTERVAL_S)

    def _watch_parent(self, parent: int) -> None:
        # Workers run in sessions of their own (the supervisor forwards signals), so nothing
        # else would stop them if the supervisor died without forwarding anything.
        while not self._done.is_set():
            if os.getppid() != parent:
                log.warning("supervisor gone; warm stop", extra={"parent_pid": parent})
                self._begin_warm_stop()
                return
            gevent.sleep(PARENT_CHECK_S)

    def _beat(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self._heartbeat_key, mapping={
            "pid": os.getpid(), "index": self.index, "host": socket.gethostname(),
            "metrics_port": self.metrics_port or 0, "owns": ",".join(self.nodes.owned()),
            "draining": int(self.ctx.draining), "beat": f"{time.time():.3f}",
        })
        pipe.pexpire(self._heartbeat_key, HEARTBEAT_TTL_MS)
        pipe.execute()

    def _on_greenlet_failure(self, greenlet: Any) -> None:
        log.error("background greenlet failed; stopping the worker",
                  extra={"greenlet": repr(greenlet), "error": repr(greenlet.exception)})
        self.exit_code = EXIT_FAILED
        self._begin_warm_stop()

    # ---- stopping -------------------------------------------------------------------------
    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info("warm stop", extra={"signal": signum})
            self._begin_warm_stop()
        else:
            log.warning("cold stop", extra={"signal": signum})
            self._cold_stop()

    def _begin_warm_stop(self) -> None:
        if self._stopping is None:
            self._stopping = gevent.spawn(self._warm_stop)

    def _warm_stop(self) -> None:
        started = time.monotonic()
        # 1. The app stops taking new calls.
        self.ctx.draining = True
        try:
            self._beat()
        except Exception:  # noqa: BLE001 - the heartbeat is advisory
            log.debug("heartbeat during warm stop failed", exc_info=True)
        # 2. Hand every node over now instead of after the TTL.
        self.nodes.release_all()
        log.info("leases released", extra={"elapsed_s": round(time.monotonic() - started, 3)})
        # 3. In-flight handlers finish (bounded); the app gets its own stop if it has one.
        app_stop = getattr(self.app, "stop", None)
        if callable(app_stop):
            _bounded(app_stop, WARM_STOP_HANDLERS_S)
        _bounded(lambda: self.dispatcher.stop(timeout=WARM_STOP_HANDLERS_S),
                 WARM_STOP_HANDLERS_S + 1)
        # 4. Links close; the worker's heartbeat key goes.
        self.nodes.stop(timeout=LINK_STOP_S)
        try:
            self.redis.delete(self._heartbeat_key)
        except Exception:  # noqa: BLE001 - it expires by itself
            log.debug("could not delete the heartbeat key", exc_info=True)
        log.info("warm stop done", extra={"elapsed_s": round(time.monotonic() - started, 3)})
        self._done.set()

    def _cold_stop(self) -> None:
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:  # noqa: BLE001, S110 - exiting anyway
                pass
        os._exit(EXIT_COLD)


class _EscalatingGroup(gevent.pool.Group):
    """A gevent Group whose greenlets report an exception to ``on_failure`` (the worker then
    stops) instead of dying silently."""

    def __init__(self, on_failure: Callable[[Any], None]) -> None:
        super().__init__()
        self._on_failure = on_failure

    def add(self, greenlet: Any) -> None:
        greenlet.link_exception(self._on_failure)
        super().add(greenlet)


def _bounded(fn: Callable[[], Any], timeout: float) -> None:
    try:
        with gevent.Timeout(timeout):
            fn()
    except gevent.Timeout:
        log.warning("gave up waiting during warm stop", extra={"timeout_s": timeout})
    except Exception:  # noqa: BLE001 - stopping anyway; say what went wrong
        log.exception("error during warm stop")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cc_core.worker",
                                     description="One cc-core worker process (one gevent hub). "
                                     "The config is read as JSON from stdin unless --config.")
    parser.add_argument("--index", type=int, default=0, help="worker number (metrics port offset)")
    parser.add_argument("--worker-id", default="", help="unique id (default: w<index>-host-pid)")
    parser.add_argument("--app", default="", help="module:function building the handlers")
    parser.add_argument("--config", default=None, help="YAML config file instead of stdin")
    parser.add_argument("--supervisor-pid", type=int, default=None,
                        help="the supervisor's pid: the worker warm-stops once it is gone "
                             "(default: the parent process at start)")
    args = parser.parse_args(argv)
    worker_id = args.worker_id or f"w{args.index}-{socket.gethostname()}-{os.getpid()}"
    from cc_core import logs

    try:
        if args.config:
            from cc_core import config as config_mod

            cfg = config_mod.load(args.config)
        else:
            cfg = Config.model_validate_json(sys.stdin.buffer.read())
        logs.setup(cfg.log_level)
        for handler in logging.getLogger().handlers:
            handler.addFilter(_WorkerIdFilter(worker_id, args.index))
        factory = _load_factory(args.app)
        return Worker(cfg, args.index, worker_id, factory, parent_pid=args.supervisor_pid).run()
    except CcCoreError as exc:
        logging.getLogger(__name__).error(str(exc), extra={"error_id": exc.error_id})
        return exc.exit_code
    except ValueError as exc:  # pydantic's ValidationError on a bad stdin config
        logging.getLogger(__name__).error(f"invalid worker config on stdin: {exc}")
        return ConfigError.exit_code


if __name__ == "__main__":
    # Run the real module (not this __main__ copy) so `cc_core.worker` types are the same ones
    # the app imports.
    from cc_core.worker import main as _main

    sys.exit(_main())
