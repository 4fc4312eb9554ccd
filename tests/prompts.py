"""A scripted prompter for the connection-layer tests, and a login."""

from __future__ import annotations

from pathlib import Path

from psftp_shell.devserver import HOST_ALIAS
from psftp_shell.ssh.connect import Connector, SSHTarget

PASSWORD = "correct horse"
"""The password asyncssh's test server takes (``password_server``)."""


class Scripted:
    """A prompter with canned answers that records what it was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []
        self.told: list[str] = []

    def ask(self, prompt: str, *, echo: bool) -> str:
        self.asked.append(prompt)
        return self.answers.pop(0) if self.answers else ""

    def tell(self, text: str) -> None:
        self.told.append(text)


async def log_in(config: Path, *options: str,
                 prompter: Scripted | None = None) -> None:
    """Connect to the config's test host once and close again."""
    connector = Connector(SSHTarget(HOST_ALIAS, config_file=str(config),
                                    options=list(options)),
                          prompter or Scripted())
    try:
        conn = await connector.connect()
        conn.close()
    finally:
        connector.close()
