"""The simulator's recordings: uuid_record / record_session write a real silent WAV where the
switch would, of the length RECORD_STOP reports (switch_ivr_async.c send_record_stop_event:
record_samples, record_ms, record_file_size), mono or stereo (RECORD_STEREO), and refuse as
mod_commands.c does when the file cannot be opened."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sim.simclient import SimClient, running_sim

TIME_SCALE = 20.0


@pytest.fixture(scope="module")
def sim_addr() -> Iterator[tuple[str, int]]:
    with running_sim(time_scale=TIME_SCALE) as addr:
        yield addr


@pytest.fixture
def client(sim_addr: tuple[str, int]) -> Iterator[SimClient]:
    with SimClient(*sim_addr) as c:
        yield c


def answered_call(client: SimClient) -> str:
    reply = client.api("sim_inbound 4915550001 4005550101")
    uid = reply.split()[1]
    client.wait_event(uid, "CHANNEL_PARK")
    assert client.api(f"uuid_answer {uid}") == "+OK\n"
    return uid


def talk(client: SimClient, uid: str, ms: int) -> None:
    """Let ``ms`` of simulated call time pass: a tone of that length, played to its end."""
    client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: playback\n"
                f"execute-app-arg: tone_stream://%({ms},0,440);loops=1\nEvent-UUID: talk-{ms}")
    client.wait_event(uid, "PLAYBACK_STOP")


def wav_fmt(path: Path) -> tuple[int, int, int]:
    """(channels, rate, data bytes) of a canonical PCM WAV."""
    head = path.read_bytes()[:44]
    assert head[:4] == b"RIFF" and head[8:16] == b"WAVEfmt "
    _, channels, rate = struct.unpack("<HHI", head[20:28])
    return channels, rate, struct.unpack("<I", head[40:44])[0]


@pytest.mark.parametrize("stereo", [False, True])
def test_uuid_record_writes_a_wav_of_the_reported_length(client: SimClient, tmp_path: Path,
                                                          stereo: bool) -> None:
    uid = answered_call(client)
    if stereo:
        assert client.api(f"uuid_setvar {uid} RECORD_STEREO true") == "+OK\n"
    path = tmp_path / "t1" / "2026" / "11" / "30" / f"{uid}.wav"   # folders made by the switch
    assert client.api(f"uuid_record {uid} start {path}") == "+OK Success\n"
    start = client.wait_event(uid, "RECORD_START")
    assert start.get("Record-File-Path") == str(path)
    talk(client, uid, 3000)
    assert client.api(f"uuid_kill {uid}") == "+OK\n"
    stop = client.wait_event(uid, "RECORD_STOP")
    assert stop.get("Record-Completion-Cause") == "success-silence"
    frames = int(stop.get("variable_record_samples") or 0)
    assert frames > 0 and int(stop.get("variable_record_ms") or 0) == frames // 8
    channels, rate, data = wav_fmt(path)
    assert (channels, rate) == ((2 if stereo else 1), 8000)
    assert data == frames * 2 * channels
    assert path.stat().st_size == 44 + data == int(stop.get("variable_record_file_size") or 0)


def test_an_unwritable_path_is_refused_without_record_start(client: SimClient,
                                                            tmp_path: Path) -> None:
    uid = answered_call(client)
    blocker = tmp_path / "root"
    blocker.write_text("a file where the recordings folder should be")
    path = blocker / "t1" / f"{uid}.wav"
    # mod_commands.c session_record_function; switch_ivr_async.c sets uri-failure
    assert client.api(f"uuid_record {uid} start {path}") == "-ERR Cannot record session!\n"
    assert client.api(f"uuid_getvar {uid} record_completion_cause") == "uri-failure"
    assert client.api(f"uuid_kill {uid}") == "+OK\n"
    client.wait_event(uid, "CHANNEL_HANGUP_COMPLETE")
    assert not [e for e in client.leg_events(uid) if e.name.startswith("RECORD_")]


def test_record_session_app_writes_its_file_at_hangup(client: SimClient, tmp_path: Path) -> None:
    uid = answered_call(client)
    path = tmp_path / "deep" / "er" / f"{uid}.wav"
    client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: record_session\n"
                f"execute-app-arg: {path}")
    client.wait_event(uid, "RECORD_START")
    assert path.exists()
    talk(client, uid, 1000)
    client.api(f"uuid_kill {uid}")
    stop = client.wait_event(uid, "RECORD_STOP")
    assert path.stat().st_size == int(stop.get("variable_record_file_size") or 0) > 44


def test_recording_variables_set_stereo_and_ride_on_the_events(client: SimClient,
                                                               tmp_path: Path) -> None:
    """mod_commands.c: argv[4] of uuid_record, url-decoded, {a=b,...}; switch_ivr_async.c
    merge_recording_variables adds each as Recording-Variable-<name> after Record-File-Path
    (and before Record-Completion-Cause on RECORD_STOP)."""
    uid = answered_call(client)
    path = tmp_path / f"{uid}.wav"
    assert client.api(f"uuid_record {uid} start {path} 0 "
                      "%7BRECORD_STEREO%3Dtrue,team%3Dnorth%7D") == "+OK Success\n"
    start = client.wait_event(uid, "RECORD_START")
    talk(client, uid, 1000)
    assert client.api(f"uuid_record {uid} stop {path}") == "+OK Success\n"
    stop = client.wait_event(uid, "RECORD_STOP")
    for ev in (start, stop):
        assert ev.get("Recording-Variable-RECORD_STEREO") == "true"
        assert ev.get("Recording-Variable-team") == "north"
        names = [k for k, _ in ev.items()]
        assert names.index("Record-File-Path") < names.index("Recording-Variable-RECORD_STEREO")
    names = [k for k, _ in stop.items()]
    assert names.index("Recording-Variable-team") < names.index("Record-Completion-Cause")
    assert wav_fmt(path)[0] == 2
    assert client.api(f"uuid_getvar {uid} RECORD_STEREO") == "_undef_"   # not the channel's
    client.api(f"uuid_kill {uid}")


def test_record_session_takes_a_limit_and_variables(client: SimClient, tmp_path: Path) -> None:
    uid = answered_call(client)
    path = tmp_path / f"{uid}.wav"
    client.send(f"sendmsg {uid}\ncall-command: execute\nexecute-app-name: record_session\n"
                f"execute-app-arg: {path} +60 {{RECORD_STEREO=true}}")
    assert client.wait_event(uid, "RECORD_START").get("Recording-Variable-RECORD_STEREO") \
        == "true"
    talk(client, uid, 500)
    client.api(f"uuid_kill {uid}")
    client.wait_event(uid, "RECORD_STOP")
    assert wav_fmt(path)[0] == 2
