"""The libraries' warnings never reach the user's terminal.

A stand-in asyncssh package, put first on ``PYTHONPATH``, warns at
import as cryptography 51 made the real one do, then loads the real
asyncssh.  Over the private sshd, psftp-shell's stderr must stay
byte-identical to sftp's; ``-v`` shows the warning; a warning raised in
psftp-shell's own code still shows, so the filter is no blanket ignore.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from psftp_shell.devserver import HOST_ALIAS, PrivateSSHD
from tests.twins import PSFTP, clean_environ, run_env

STAND_IN = '''\
"""A stand-in for asyncssh that warns at import, then is the real one."""
import warnings

class CryptographyDeprecationWarning(UserWarning):
    """Shaped like cryptography's: a UserWarning subclass."""

warnings.warn("DSA is deprecated (stand-in)",
              CryptographyDeprecationWarning, stacklevel=1)
warnings.warn("an old API (stand-in)", DeprecationWarning, stacklevel=1)
__path__ = [{real!r}]
__file__ = {init!r}
with open(__file__) as _source:
    exec(compile(_source.read(), __file__, "exec"))
'''


def stand_in(tmp_path: Path) -> Path:
    """A directory holding the warning stand-in for asyncssh."""
    real = Path(asyncssh.__file__).parent
    package = tmp_path / "standin" / "asyncssh"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(STAND_IN.format(
        real=str(real), init=str(real / "__init__.py")))
    return package.parent


def environ_with(tmp_path: Path, path: Path) -> dict[str, str]:
    """Both programs' environment, with *path* first on PYTHONPATH."""
    environ = clean_environ(tmp_path)
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(path), os.getcwd()])
    environ["PYTHONWARNINGS"] = "default"   # as loud as a user may set it
    return environ


def test_stand_in_really_warns(tmp_path: Path) -> None:
    """Without psftp-shell's filter the stand-in is heard (the control)."""
    environ = environ_with(tmp_path, stand_in(tmp_path))
    done = run_env([sys.executable, "-c", "import asyncssh"], stdin=b"",
                   cwd=tmp_path, environ=environ)
    assert b"DSA is deprecated (stand-in)" in done.stderr
    assert b"an old API (stand-in)" in done.stderr


def test_stderr_is_sftps(sshd: PrivateSSHD, sftp_bin: str,
                         tmp_path: Path) -> None:
    """A batch over sshd prints exactly what sftp prints."""
    environ = environ_with(tmp_path, stand_in(tmp_path))
    script = b"pwd\nls -1 /nonexistent-for-sure\n"
    args = ["-F", str(sshd.ssh_config), "-b", "-", HOST_ALIAS]
    theirs = run_env([sftp_bin, *args], stdin=script, cwd=tmp_path,
                     environ=environ)
    ours = run_env([*PSFTP, *args], stdin=script, cwd=tmp_path,
                   environ=environ)
    assert b"nonexistent-for-sure" in theirs.stderr
    assert (ours.status, ours.stdout, ours.stderr) == \
        (theirs.status, theirs.stdout, theirs.stderr)


def test_parallel_get_stays_quiet(sshd: PrivateSSHD, remote_dir: Path,
                                  tmp_path: Path) -> None:
    """-n 4 streams import and connect alike: nothing extra on stderr."""
    (remote_dir / "f").write_bytes(os.urandom(300_000))
    environ = environ_with(tmp_path, stand_in(tmp_path))
    ours = run_env([*PSFTP, "-q", "-n", "4", "-F", str(sshd.ssh_config),
                    f"{HOST_ALIAS}:{remote_dir}/f", "."], stdin=b"",
                   cwd=tmp_path, environ=environ)
    assert (ours.status, ours.stderr) == (0, b"")
    assert (tmp_path / "f").read_bytes() == (remote_dir / "f").read_bytes()


@pytest.mark.parametrize("flags, shown", [(["-v"], True),
                                           (["-q", "-v"], True),
                                           (["-v", "-q"], False)])
def test_verbose_shows_them(sshd: PrivateSSHD, tmp_path: Path,
                            flags: list[str], shown: bool) -> None:
    """-v is where a user looks for them, so -v shows them; a -q after
    it silences them with the rest, as it silences ssh's debug lines."""
    environ = environ_with(tmp_path, stand_in(tmp_path))
    ours = run_env([*PSFTP, *flags, "-F", str(sshd.ssh_config), "-b", "-",
                    HOST_ALIAS], stdin=b"pwd\n", cwd=tmp_path,
                   environ=environ)
    assert ours.status == 0
    assert (b"DSA is deprecated (stand-in)" in ours.stderr) is shown
    if not shown:
        assert ours.stderr == b""


def own_and_theirs(tmp_path: Path, module: str,
                   category: str = "DeprecationWarning") -> bytes:
    """stderr of a warning attributed to *module*, after the filter."""
    code = ("import psftp_shell, warnings\n"
            f"warnings.warn_explicit('probe', {category}, 'x.py', 1, "
            f"module={module!r})\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          cwd=tmp_path, env={**os.environ,
                                             "PYTHONWARNINGS": "default"},
                          check=True)
    return done.stderr


def test_filter_is_narrow(tmp_path: Path) -> None:
    """Only the dependencies' deprecation family is kept quiet."""
    assert own_and_theirs(tmp_path, "asyncssh.crypto.misc") == b""
    assert own_and_theirs(tmp_path, "cryptography.utils",
                          "UserWarning") == b""
    assert b"probe" in own_and_theirs(tmp_path,
                                      "psftp_shell.engine.transfer_engine")
    assert b"probe" in own_and_theirs(tmp_path, "asyncssh_lookalike")
    assert b"probe" in own_and_theirs(tmp_path, "asyncssh.connection",
                                      "RuntimeWarning")


def test_real_libraries_are_quiet(tmp_path: Path) -> None:
    """Whatever versions are installed, importing them prints nothing."""
    done = subprocess.run(
        [sys.executable, "-c", "import psftp_shell, asyncssh, "
         "asyncssh.public_key, cryptography.hazmat.primitives.asymmetric"],
        capture_output=True, cwd=tmp_path,
        env={**os.environ, "PYTHONWARNINGS": "default"}, check=True)
    assert done.stderr == b""
