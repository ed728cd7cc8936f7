"""esl_handlers stands alone as an ESL library: it imports nothing from the product."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_esl_handlers_module_imports_without_cc_core() -> None:
    modules = sorted(p.stem for p in (REPO / "esl_handlers").glob("*.py") if p.stem != "__init__")
    assert {"link", "nodes", "connection", "lease", "dispatch", "config", "errors"} <= set(modules)
    # cc_core made unimportable: any import of it, direct or through another module, fails.
    code = ("import sys; sys.modules['cc_core'] = None\n"
            + "".join(f"import esl_handlers.{m}\n" for m in modules))
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
