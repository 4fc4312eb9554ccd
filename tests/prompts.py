"""A scripted prompter for the connection-layer tests."""

from __future__ import annotations


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
