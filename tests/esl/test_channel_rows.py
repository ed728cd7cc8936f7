"""``show channels as json`` decoded row by row: the same rows as a whole decode, for every
captured reply, and a long list does not hold the event loop while it is decoded."""

from __future__ import annotations

import json
from pathlib import Path

from esl_handlers.link import ROWS_PER_TURN, channel_rows
from tests.conftest import turns_while

FS = "freeswitch-1.10.12"


def _replies(captures_dir: Path) -> list[str]:
    entries = json.loads((captures_dir / FS / "command_replies.json").read_text())
    return [e["reply_body"] for e in entries if e["command"] == "api show channels as json"]


def test_every_captured_reply_gives_the_rows_a_whole_decode_gives(captures_dir: Path) -> None:
    bodies = _replies(captures_dir)
    assert any(json.loads(b).get("rows") for b in bodies)
    for body in bodies:
        whole = json.loads(body).get("rows")
        rows = channel_rows(body)
        if whole is None:
            # {"row_count": 0}: no rows to walk; the caller decodes it whole.
            assert rows is None
        else:
            assert rows == whole


def test_a_text_laid_out_otherwise_is_left_to_a_whole_decode() -> None:
    assert channel_rows('{"rows":[{"uuid":"a"}],"row_count":1}') is None
    assert channel_rows('{"row_count":1,"rows":[{"uuid":"a"}') is None      # cut short
    assert channel_rows('-ERR no reply') is None


def test_a_long_list_lets_other_greenlets_run_while_it_is_decoded(captures_dir: Path) -> None:
    sample = next(json.loads(b)["rows"] for b in _replies(captures_dir)
                  if len(json.loads(b).get("rows", [])) > 1)
    rows = [dict(r, uuid=f"{i:08d}-{r['uuid'][9:]}") for i in range(500) for r in sample]
    text = json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))
    decoded, turns = turns_while(lambda: channel_rows(text))
    assert decoded == rows
    assert turns >= len(rows) // ROWS_PER_TURN - 1
