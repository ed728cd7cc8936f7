"""Every captured scenario, replayed against the simulator over TCP, event for event.

For each ``scenarios/<name>/`` of the FreeSWITCH 1.10.12 captures: the same commands as
``sent.log`` (leg UUIDs mapped to the simulator's), ``sim_*`` controls where SIPp acted,
then per leg the compared events must equal the captured ones in exact order, with their key
headers; every reply text must equal the captured one. Cross-leg order is checked only for
the facts the captures README names.

Nothing extra may pass unseen: an event of a channel that is none of the captured legs fails
the replay, the events without a channel (API, BACKGROUND_JOB, CUSTOM) must equal the
captured ones in delivery order, and every leg must reach CHANNEL_DESTROY. The expected side
is read with ``tests/capreader.py``, not with the product's parser.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sim.scenario_replay import (
    Scenario,
    compared,
    key,
    load,
    normalise_reply,
    other_compared,
    other_key,
    substitute,
)
from tests.sim.simclient import SimClient, running_sim

TIME_SCALE = 5.0
STEP_TIMEOUT = 10.0


def scenario_dirs() -> list[Path]:
    from tests.conftest import CAPTURES

    root = CAPTURES / "freeswitch-1.10.12" / "scenarios"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


@pytest.fixture
def sim_addr() -> Iterator[tuple[str, int]]:
    with running_sim(time_scale=TIME_SCALE) as addr:
        yield addr


# Where the captured switch kept its files; the replay gives the simulator a temporary folder
# instead, since it writes the recordings it is asked for.
CAPTURED_FILES = "/data/fswitch/"


class Replay:
    def __init__(self, scn: Scenario, client: SimClient, files: Path | None = None) -> None:
        self.scn = scn
        self.client = client
        self.files = f"{files}/" if files is not None else CAPTURED_FILES
        self.label_sim: dict[str, str] = {}  # label -> sim uuid
        self.sim_label: dict[str, str] = {}
        self.captured_uuid = {label: uid for uid, label in scn.legs.items()}
        self.seen = 0
        self.counts = {label: 0 for label in scn.legs.values()}
        self.sim_sequences: dict[str, list[tuple[str, ...]]] = {
            label: [] for label in scn.legs.values()}
        self.order: list[tuple[str, str, str]] = []  # (label or "", event name, extra)
        self.reply_mismatches: list[str] = []
        self.ghosts: list[str] = []  # events of a channel that is none of the legs
        self.barrier: str | None = None  # Job-UUID of the closing bgapi (see run)
        self.others: list[tuple[str, ...]] = []  # other_key of channel-less events

    def assign(self, label: str, uid: str) -> None:
        self.label_sim[label] = uid
        self.sim_label[uid] = label

    def absorb(self) -> None:
        events = self.client.events
        while self.seen < len(events):
            ev = events[self.seen]
            self.seen += 1
            uid = ev.unique_id or ""
            if uid and uid not in self.sim_label and ev.name not in ("API", "BACKGROUND_JOB"):
                free = [lb for lb in self.scn.first_seen if lb not in self.label_sim]
                if free:
                    self.assign(free[0], uid)
            label = self.sim_label.get(uid, "")
            if uid and not label:
                self.ghosts.append(f"{ev.name} Unique-ID={uid} "
                                   f"Hangup-Cause={ev.get('Hangup-Cause')}")
            elif self.barrier is not None and (
                    ev.job_uuid == self.barrier
                    or (ev.name == "API" and ev.get("API-Command") == "status")):
                continue    # the replay's own closing bgapi, not the scenario's
            elif not uid and other_compared(ev):
                self.others.append(other_key(ev, self.to_captured(
                    ev.get("API-Command-Argument") or ev.body)))
            if ev.name == "BACKGROUND_JOB":
                self.order.append(("", "BACKGROUND_JOB", ev.body))
            elif label:
                self.order.append((label, ev.name or "", ev.get("Hangup-Cause") or ""))
            if label and compared(ev):
                self.sim_sequences[label].append(key(ev))
                self.counts[label] += 1

    def reached(self, counts: dict[str, int]) -> bool:
        self.absorb()
        return all(self.counts.get(lb, 0) >= n for lb, n in counts.items())

    def wait_counts(self, counts: dict[str, int], what: str) -> None:
        if not self.client.wait(lambda: self.reached(counts), STEP_TIMEOUT):
            raise AssertionError(f"{self.scn.name}: simulator never reached {counts} before "
                                 f"{what}; it has {self.counts}")

    def to_sim(self, text: str) -> str:
        mapping = {self.captured_uuid[lb]: uid for lb, uid in self.label_sim.items()}
        return substitute(text, mapping).replace(CAPTURED_FILES, self.files)

    def to_captured(self, text: str) -> str:
        mapping = {uid: self.captured_uuid[lb] for lb, uid in self.label_sim.items()}
        return substitute(text, mapping).replace(self.files, CAPTURED_FILES)

    def api(self, command: str) -> str:
        return self.client.api(command)

    def run(self) -> None:
        for action in self.scn.actions:
            self.wait_counts(action.counts, f"{action.kind} {action.text or action.args}")
            if action.kind == "inbound":
                reply = self.api("sim_inbound " + " ".join(action.args))
                assert reply.startswith("+OK "), reply
                self.assign(action.leg, reply.split()[1])
            elif action.kind == "endpoint":
                reply = self.api("sim_endpoint " + " ".join(action.args))
                assert reply.startswith("+OK"), reply
            elif action.kind == "dtmf":
                reply = self.api(f"sim_dtmf {self.label_sim[action.leg]} {action.args[0]}")
                assert reply == "+OK\n", reply
            elif action.kind == "hangup":
                reply = self.api(f"sim_hangup {self.label_sim[action.leg]}")
                assert reply == "+OK\n", reply
            else:
                self.command(action.text, action.expected_reply)
        # the end of every leg: its CHANNEL_STATE CS_DESTROY
        final = {lb: len(seq) for lb, seq in self.scn.sequences.items()}
        self.wait_counts(final, "the end of the call")
        if not self.client.wait(lambda: self._all_destroyed(), STEP_TIMEOUT):
            raise AssertionError(f"{self.scn.name}: not every leg reached CHANNEL_DESTROY: "
                                 f"{sorted(self.destroyed())} of {sorted(self.label_sim)}")
        # A barrier: a BACKGROUND_JOB travels the event stream behind everything fired
        # before it, so whatever the simulator sent after the last CHANNEL_DESTROY (a ghost
        # channel, an extra event) is read before the comparison.
        self.barrier = self.client.send("bgapi status").get("Job-UUID") or ""
        if not self.client.wait(lambda: any(e.name == "BACKGROUND_JOB" and
                                            e.job_uuid == self.barrier
                                            for e in self.client.events), STEP_TIMEOUT):
            raise AssertionError(f"{self.scn.name}: no BACKGROUND_JOB for the closing bgapi")
        self.absorb()

    def destroyed(self) -> set[str]:
        return {lb for lb, n, extra in self.order if n == "CHANNEL_DESTROY"}

    def _all_destroyed(self) -> bool:
        self.absorb()
        return self.destroyed() >= set(self.scn.legs.values())

    def command(self, text: str, expected: str | None) -> None:
        sim_text = self.to_sim(text)
        frame = self.client.send(sim_text)
        if frame.content_type == "api/response":
            got = frame.body.decode()
        else:
            got = frame.get("Reply-Text") or ""
        if expected is not None:
            want = normalise_reply(expected)
            have = normalise_reply(self.to_captured(got))
            if have != want:
                self.reply_mismatches.append(f"{text.splitlines()[0]!r}: {have!r} != {want!r}")


def position(order: list[tuple[str, str, str]], label: str, name: str) -> int:
    for index, (lb, n, _) in enumerate(order):
        if lb == label and n == name:
            return index
    return -1


@pytest.mark.parametrize("directory", scenario_dirs(), ids=lambda p: p.name)
def test_scenario_matches_capture(directory: Path, captures_dir: Path,
                                  sim_addr: tuple[str, int], tmp_path: Path) -> None:
    scn = load(directory)
    started = time.monotonic()
    with SimClient(*sim_addr) as client:
        replay = Replay(scn, client, tmp_path)
        replay.run()
    assert not replay.reply_mismatches, "\n".join(replay.reply_mismatches)
    assert not replay.ghosts, f"{scn.name}: events of unknown channels:\n" + "\n".join(
        replay.ghosts)
    for label, want in scn.sequences.items():
        have = replay.sim_sequences[label]
        assert have == want, _diff(scn.name, label, want, have)
    # BACKGROUND_JOB bodies (UUIDs mapped back to the captured legs)
    sim_jobs = [replay.to_captured(body) for lb, n, body in replay.order if n == "BACKGROUND_JOB"]
    assert sim_jobs == scn.jobs
    assert replay.others == scn.others, _diff(scn.name, "(no channel)", scn.others,
                                              replay.others)
    _cross_leg_facts(scn, replay)
    assert time.monotonic() - started < 20


def _cross_leg_facts(scn: Scenario, replay: Replay) -> None:
    order = replay.order
    # README: RECORD_STOP after A's HANGUP and B's HANGUP_COMPLETE, before A's HANGUP_COMPLETE
    for label in scn.legs.values():
        stop = position(order, label, "RECORD_STOP")
        if stop < 0:
            continue
        assert position(order, label, "CHANNEL_HANGUP") < stop < position(
            order, label, "CHANNEL_HANGUP_COMPLETE")
        for other in scn.legs.values():
            if other != label and any(e.name == "CHANNEL_BRIDGE" for e in scn.events
                                      if scn.label_of(e.unique_id) == label):
                complete = position(order, other, "CHANNEL_HANGUP_COMPLETE")
                captured_other = [e for e in scn.events if scn.label_of(e.unique_id) == other
                                  and e.get("Hangup-Cause") == "LOSE_RACE"]
                if complete >= 0 and not captured_other:
                    assert complete < stop, f"{other} HANGUP_COMPLETE after {label} RECORD_STOP"
    # README: a ring-all loser's LOSE_RACE hang-up comes before the job's +OK
    for index, (_, name, extra) in enumerate(order):
        if name == "CHANNEL_HANGUP" and extra == "LOSE_RACE":
            job = next(i for i, (_, n, body) in enumerate(order)
                       if n == "BACKGROUND_JOB" and body.startswith("+OK"))
            assert index < job


def _diff(name: str, label: str, want: list[tuple[str, ...]],
          have: list[tuple[str, ...]]) -> str:
    lines = [f"{name} leg {label}: sequences differ"]
    for index in range(max(len(want), len(have))):
        w = want[index] if index < len(want) else ("-",)
        h = have[index] if index < len(have) else ("-",)
        mark = "  " if w == h else "!!"
        lines.append(f"{mark} {index:3} capture {' '.join(w)}\n       sim     {' '.join(h)}")
    return "\n".join(lines)
