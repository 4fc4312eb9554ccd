"""asyncssh's find_library calls at import spare the gcc/ld runs."""

import ctypes.util
import json
import subprocess
import sys
import types

import pytest

from psftp_shell.ssh import library_lookup

LINUX = pytest.mark.skipif(not library_lookup.applies(ctypes.util),
                           reason="Linux ctypes.util only")
NAMES = ["c", "m", "z", "ssl", "crypto", "nettle", "libnettle",
         "libnettle-6", "oqs", "liboqs", "no-such-library-xyz"]


def call_as(module: str, func, name: str):
    scope = {"__name__": module, "func": func, "name": name}
    exec("result = func(name)", scope)
    return scope["result"]


@LINUX
@pytest.mark.parametrize("name", NAMES)
def test_same_answers_as_the_standard_library(name):
    quick = library_lookup.quick_find_library(ctypes.util)
    assert outcome(call_as, "asyncssh.crypto.pq", quick, name) == \
        outcome(ctypes.util.find_library, name)


def outcome(func, *args):
    try:
        return func(*args)
    except Exception as exc:    # the stdlib's own FileNotFoundError
        return type(exc)


def fake_util(ldconfig_answer):
    calls = []
    util = types.ModuleType("fake_util")
    util.find_library = lambda name: calls.append(name) or "slow"
    util._findSoname_ldconfig = lambda name: ldconfig_answer
    return util, calls


def test_asyncssh_gets_the_ldconfig_answer_without_a_compiler(monkeypatch):
    monkeypatch.delenv("LIBRARY_PATH", raising=False)
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    util, calls = fake_util(None)
    quick = library_lookup.quick_find_library(util)
    assert call_as("asyncssh.crypto.pq", quick, "no-such-lib-xyz") is None
    assert calls == []
    util, calls = fake_util("libfound.so.1")
    quick = library_lookup.quick_find_library(util)
    assert call_as("asyncssh.crypto.umac", quick, "found") == "libfound.so.1"
    assert calls == []


def test_others_and_extra_paths_get_the_original(monkeypatch):
    util, calls = fake_util(None)
    quick = library_lookup.quick_find_library(util)
    assert call_as("somebody.else", quick, "x") == "slow"
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/lib")
    assert call_as("asyncssh.crypto.pq", quick, "y") == "slow"
    monkeypatch.delenv("LD_LIBRARY_PATH")
    monkeypatch.setenv("LIBRARY_PATH", "/opt/lib")
    assert call_as("asyncssh.crypto.pq", quick, "z") == "slow"
    assert calls == ["x", "y", "z"]


def test_a_library_file_on_disk_gets_the_original(tmp_path, monkeypatch):
    monkeypatch.delenv("LIBRARY_PATH", raising=False)
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    (tmp_path / "libunlisted.so").write_bytes(b"")
    (tmp_path / "libfoo.a").write_bytes(b"")
    listing = library_lookup._listing([str(tmp_path), "/no/such/dir"])
    assert library_lookup._may_link("unlisted", listing)
    assert not library_lookup._may_link("other", listing)
    assert not library_lookup._may_link("listed", listing)
    assert library_lookup._may_link("libfoo", listing)
    assert library_lookup._may_link("foo", listing)


def test_other_internals_are_left_alone():
    util, _ = fake_util(None)
    for name in library_lookup.KNOWN_NAMES:
        setattr(util, name, lambda name: None)
    assert not library_lookup.applies(util)


PROBE = """
import json, subprocess, sys
ran = []
real = subprocess.Popen.__init__
def init(self, args, *rest, **kw):
    ran.append(str(args[0]))
    real(self, args, *rest, **kw)
subprocess.Popen.__init__ = init
import psftp_shell.ssh.connect
import ctypes.util
from asyncssh.crypto import pq, umac
before = list(ran)
util = ctypes.util
std = getattr(util.find_library, "original", util.find_library)
print(json.dumps({"ran": before, "nettle": umac._nettle_lib,
                  "oqs": pq._oqs_lib,
                  "std": [std(n) for n in ("nettle", "oqs", "liboqs")]}))
"""


@LINUX
def test_importing_asyncssh_runs_no_compiler():
    out = subprocess.run([sys.executable, "-c", PROBE], check=True,
                         capture_output=True, text=True).stdout
    got = json.loads(out.splitlines()[-1])
    ran = got["ran"]
    assert got["nettle"] == got["std"][0]
    assert got["oqs"] == (got["std"][1] or got["std"][2])
    listing = library_lookup._listing(library_lookup._library_dirs())
    if got["oqs"] is None and not any(
            library_lookup._may_link(name, listing)
            for name in ("oqs", "liboqs")):
        assert all(prog.endswith("ldconfig") for prog in ran), ran
