"""asyncssh is imported without its X.509 shim where the shim could not
load (psftp_shell.ssh.no_x509)."""

import importlib.util
import json
import subprocess
import sys

import pytest

from psftp_shell.ssh import no_x509

PROBE = """
import json, sys
import psftp_shell.ssh.connect
import asyncssh
from asyncssh import public_key
x509 = [m for m in sys.modules if m.startswith("cryptography.x509")]
algs = public_key.get_x509_certificate_algs()
print(json.dumps({
    "x509": sorted(x509),
    "available": public_key._x509_available,
    "algs": [a.decode() for a in algs],
    "key": asyncssh.generate_private_key("ssh-ed25519").algorithm.decode(),
}))
"""


def probe() -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


@pytest.mark.skipif(importlib.util.find_spec(no_x509.NEEDS) is not None,
                    reason="pyOpenSSL is installed: the shim is kept")
def test_asyncssh_imports_no_x509_where_it_could_not_load():
    got = probe()
    assert got["x509"] == []
    assert got["available"] is False
    assert got["algs"] == []
    assert got["key"] == "ssh-ed25519"      # the rest of asyncssh works


def absent(name: str) -> None:
    return None


def present(name: str) -> object:
    return object()


@pytest.mark.parametrize("modules, find_spec, expected", [
    ({}, absent, True),
    ({}, present, False),                       # pyOpenSSL installed
    ({"asyncssh": object()}, absent, False),    # too late
    ({no_x509.SHIM: object()}, absent, False),
])
def test_when_the_shim_is_left_out(modules, find_spec, expected):
    assert no_x509.unloadable(modules, find_spec) is expected


def test_too_late_changes_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, no_x509.SHIM, raising=False)
    import asyncssh  # noqa: F401  (already imported by the suite)
    no_x509.leave_out()
    assert no_x509.SHIM not in sys.modules
