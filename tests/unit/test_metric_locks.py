"""A gevent-patched worker records its metrics under OS locks (``metrics.native_locks``):
gevent's locks cost each metric operation of the event path about 70 % more."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
from gevent import monkey
monkey.patch_all()
{call}
from prometheus_client import CollectorRegistry, Counter, Histogram
r = CollectorRegistry()
print(type(Counter("c", "c", registry=r)._value._lock).__module__,
      type(Histogram("h", "h", registry=r)._sum._lock).__module__)
"""


@pytest.mark.parametrize(("call", "module"), [
    ("from metrics import native_locks; native_locks()", "_thread"),
    ("", "gevent.thread"),
])
def test_metrics_built_after_patching_take_os_locks_only_when_asked(call: str,
                                                                    module: str) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE.format(call=call)], check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == [module, module]

