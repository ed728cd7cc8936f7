"""`cc-core numbers …` from the command line, on a SQLite store."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cc_core.cli import cli


def _run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_import_search_reserve_and_show(tmp_path: Path) -> None:
    db = str(tmp_path / "records.sqlite3")
    csv = tmp_path / "numbers.csv"
    csv.write_text("号码\n4008888888\n4008168168\n4008-888-888\n40088\n", encoding="utf-8")
    code, out, _ = _run("numbers", "import", str(csv), "--db", db)
    assert code == 0
    assert out.splitlines()[0] == "accepted 2, duplicate 1, invalid 1"
    assert "line 5: '40088'" in out
    code, out, _ = _run("numbers", "search", "--pattern", "*8888", "--grade", "S", "--db", db)
    assert code == 0 and [ln.split()[0] for ln in out.splitlines()[1:]] == ["4008888888"]
    assert _run("numbers", "reserve", "4008888888", "--holder", "acme", "--for", "72h",
                "--db", db)[0] == 0
    code, _, err = _run("numbers", "reserve", "4008888888", "--holder", "globex", "--db", db)
    assert code == 2 and "is reserved by acme" in err and "[numbers.taken]" in err
    code, _, err = _run("numbers", "move", "4008888888", "active", "--by", "staff-1",
                        "--reason", "skip the audit", "--db", db)
    assert code != 0 and "from reserved it can become: applied, available" in err
    code, out, _ = _run("numbers", "show", "4008888888", "--db", db)
    assert code == 0 and "available -> reserved    by acme: reserved" in out
