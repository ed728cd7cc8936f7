"""A call's flow data survives its record: what a save packs, a takeover unpacks."""

from __future__ import annotations

import msgpack

from cc_core.flow.record import CallData


def test_every_field_comes_back_from_the_record_as_it_was_saved() -> None:
    data = CallData(tenant="t1", dnis="4008001234", caller="13311112222", priority=3,
                    answered=True, menu_stack=["main", "sales"], path=["menu:main", "queue:q"],
                    vars={"order": "12345"}, skills={"english": 7},
                    offer={"token": "00001", "legs": {"leg-1": "a1"}, "agents": ["a1"]},
                    chain=["voicemail:box"], joined_ms=1_796_000_000_000,
                    recording={"name": "t1/2026/11/30/x.wav", "size": 4096})
    assert CallData.unpack(data.pack(), "t1", "4008001234") == data


def test_the_record_holds_every_field_by_name_and_later_edits_do_not_change_a_pack() -> None:
    data = CallData(tenant="t1", dnis="4008001234", vars={"k": "v"})
    blob = data.pack()
    data.vars["k"] = "changed"
    raw = msgpack.unpackb(blob, raw=False)
    assert set(raw) == set(CallData.__dataclass_fields__)
    assert raw["vars"] == {"k": "v"} and raw["tenant"] == "t1"


def test_a_record_from_an_older_worker_with_an_unknown_field_still_unpacks() -> None:
    blob = msgpack.packb({"tenant": "t1", "dnis": "400", "caller": "1", "gone_field": 1},
                         use_bin_type=True)
    data = CallData.unpack(blob, "t1", "400")
    assert data.caller == "1" and data.outcome == ""
