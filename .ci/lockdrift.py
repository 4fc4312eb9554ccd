"""Say how the installed packages differ from the lock.

Run by ``make test-newest`` in the environment of the newest releases
that setup.cfg allows: before the tests, to show what moved; after a
failure (``--failed``), to name the packages and versions that changed
and so are the first suspects.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)")


def canonical(name: str) -> str:
    """PEP 503's normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    """The lock's pins, by canonical name."""
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonical(match[1])] = match[2]
    return pins


def installed() -> dict[str, str]:
    """What this environment has, by canonical name."""
    return {canonical(dist.metadata["Name"]): dist.version
            for dist in metadata.distributions()}


def drift(pins: dict[str, str], have: dict[str, str]) -> list[str]:
    """One line per locked package whose installed version differs."""
    return [f"{name} {version} (locked) -> {have.get(name, 'absent')}"
            for name, version in sorted(pins.items())
            if name in have and have[name] != version]


def main(argv: list[str]) -> int:
    failed = "--failed" in argv
    paths = [arg for arg in argv if not arg.startswith("--")]
    lines = drift(locked(Path(paths[0])), installed())
    if failed:
        print("The newest allowed releases FAILED the tests.", file=sys.stderr)
        if lines:
            print("They differ from the lock in:", file=sys.stderr)
        else:
            print("No locked package differs: look at the test itself.",
                  file=sys.stderr)
    else:
        print("Newest allowed releases against the lock:",
              "no difference" if not lines else f"{len(lines)} differ")
    for line in lines:
        print("  " + line, file=sys.stderr if failed else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
