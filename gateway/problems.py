"""The errors a person must fix, told all at once (a bad setting, a database, a backup).

A module of its own, importing nothing, so that any module may raise them without an import cycle.
"""

from __future__ import annotations


class Problems(Exception):
    """Something a person must fix: ``problems`` holds one line each (the CLI's format)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
