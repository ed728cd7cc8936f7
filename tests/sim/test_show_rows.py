"""``show channels as json`` on a busy simulator: the captured layout byte for byte, printed
without stopping the channels for the whole listing."""

from __future__ import annotations

import json

from fssim.callapi import ROWS_PER_TURN, _json_rows
from tests.conftest import turns_while


def _rows(n: int) -> list[dict[str, str]]:
    return [{"uuid": f"{i:08d}-1111-2222-3333-444444444444", "direction": "inbound",
             "dest": "4008001234", "cid_name": "张三 \"quoted\"", "application": "park"}
            for i in range(n)]


def test_the_listing_is_what_one_compact_json_dump_prints() -> None:
    for n in (1, ROWS_PER_TURN, ROWS_PER_TURN + 1, 3 * ROWS_PER_TURN + 7):
        rows = _rows(n)
        assert _json_rows(rows) == json.dumps({"row_count": n, "rows": rows},
                                              separators=(",", ":"))


def test_channels_run_while_a_long_listing_is_printed() -> None:
    _, turns = turns_while(lambda: _json_rows(_rows(10 * ROWS_PER_TURN)))
    assert turns >= 9
