"""``python -m fssim`` / ``cc-core sim``: run the FreeSWITCH simulator until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import gevent
from gevent.event import Event

from cc_core import logs
from cc_core.idlegc import IdleCollector
from fssim import engine
from fssim.server import EslServer
from fssim.switch import DEFAULT_DB_LAG_MS, Switch

log = logging.getLogger(__name__)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` accepted) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def build_parser(prog: str = "fssim") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="FreeSWITCH 1.10 inbound event-socket simulator (calls driven by sim_* api "
                    "commands). Prints 'listening on HOST:PORT' first.")
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8021), metavar="HOST:PORT",
                   help="address to listen on; port 0 picks a free one (default 127.0.0.1:8021)")
    p.add_argument("--password", default="ClueCon", help="ESL password (default ClueCon)")
    p.add_argument("--heartbeat-interval", type=float, default=20.0, metavar="SECONDS",
                   help="seconds between HEARTBEAT events, wall clock; 0 disables (default 20)")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="F",
                   help="simulated time runs F times faster than real time (default 1)")
    p.add_argument("--max-sessions", type=int, default=1000, help="max sessions (default 1000)")
    p.add_argument("--db-lag-ms", type=float, default=DEFAULT_DB_LAG_MS, metavar="MS",
                   help="how long `show channels` (FreeSWITCH's core database, written from a "
                        "queue after the events) trails the events, wall clock "
                        f"(default {DEFAULT_DB_LAG_MS:g})")
    p.add_argument("--rtp-loss", type=float, default=0.0, metavar="F",
                   help="fraction of the far ends' audio packets lost, for the RTP statistics "
                        "at hang-up (default 0; per leg: sim_rtp)")
    p.add_argument("--rtp-jitter-ms", type=float, default=2.0, metavar="MS",
                   help="standard deviation of their packets' inter-arrival time (default 2)")
    p.add_argument("--rtp-silent", action="store_true",
                   help="far ends send no audio, only DTMF (as the captures' SIPp callers)")
    p.add_argument("--hostname", default=None, help="FreeSWITCH-Hostname (default: this host)")
    p.add_argument("--log-level", default="WARNING", type=str.upper,
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="log level of the JSON log lines on stderr (default WARNING)")
    return p


def main(argv: list[str] | None = None, prog: str = "fssim") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.db_lag_ms < 0:
        print("fssim: --db-lag-ms must be >= 0", file=sys.stderr)
        return 2
    if args.time_scale <= 0:
        print("fssim: --time-scale must be > 0", file=sys.stderr)
        return 2
    logs.setup(str(args.log_level))
    switch = Switch(hostname=args.hostname, password=args.password,
                    heartbeat_interval=args.heartbeat_interval, time_scale=args.time_scale,
                    max_sessions=args.max_sessions, db_lag_ms=args.db_lag_ms)
    from fssim import rtpstats

    try:
        quality = rtpstats.parse_settings(rtpstats.RtpQuality(), [
            f"loss={args.rtp_loss}", f"jitter_ms={args.rtp_jitter_ms}",
            f"sending={0 if args.rtp_silent else 1}"])
    except ValueError as exc:
        print(f"fssim: --rtp-*: {exc}", file=sys.stderr)
        return 2
    engine.install(switch).rtp_quality = quality
    host, port = args.listen
    server = EslServer(switch, host, port)
    try:
        host, port = server.start()
    except OSError as exc:
        print(f"fssim: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    stop = Event()
    # handlers first: whoever reads our first line may signal us right away
    handlers = [gevent.signal_handler(sig, stop.set) for sig in (signal.SIGTERM, signal.SIGINT)]
    switch.start()
    # FreeSWITCH has no collector pauses to imitate: start-up's objects are frozen out of the
    # collector's sight, and collections run when no channel has anything to do (a pass in
    # the middle of a burst held every channel's events, then sent them all at once). Ended
    # legs are freed by reference counting (Engine.hangup), so a full pass finds next to
    # nothing, yet walks every live channel (25 ms at 200 calls/s): once a minute at most.
    collector = IdleCollector(full_min_s=60.0)
    collector.start()
    print(f"listening on {host}:{port}", flush=True)
    try:
        stop.wait()
    finally:
        collector.stop()
        for h in handlers:
            h.cancel()
        server.stop()
        switch.stop()
    return 0
