"""Progress on long jobs: one updating line per stage on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TerminalProgress:
    """A callable ``(stage, done, total)``; redraws at most ten times a second.

    When the stream is not a terminal (a log, CI) it writes one line when a stage
    ends, and a line every ten seconds in between.
    """

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.stage: str | None = None
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        finished = bool(total) and done >= total
        pct = f" {done / total:.0%}" if total else ""
        if not self.tty:
            if finished or now - self.last >= 10:
                self.stream.write(f"{stage}：{done}/{total}{pct}\n")
                self.stream.flush()
                self.last = now
            return
        if stage == self.stage and not finished and now - self.last < 0.1:
            return
        if stage != self.stage and self.stage is not None:
            self.stream.write("\n")
        self.stage = stage
        self.last = now
        self.stream.write(f"\r{stage}：{done}/{total}{pct}\033[K")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.stage is not None:
            self.stream.write("\n")
            self.stream.flush()
        self.stage = None


def commit_or_exit(
    session, progress: TerminalProgress, work: Callable[[], T], rejected: type[Exception]
) -> T:
    """Run one import of a CLI command: commit what ``work`` did, or, when it raises
    ``rejected`` (an exception carrying ``report.lines()``), roll back, print the
    report on stderr and exit with status 1. Nothing of a refused file stays."""
    try:
        result = work()
    except rejected as exc:
        session.rollback()
        progress.close()
        import click

        click.echo("\n".join(exc.report.lines()), err=True)  # type: ignore[attr-defined]
        sys.exit(1)
    session.commit()
    progress.close()
    return result
