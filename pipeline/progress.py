"""Progress of a long task: a bar on the terminal and, under Luigi, the scheduler's percentage
and status message."""

from __future__ import annotations

from typing import Callable

from tqdm import tqdm

Report = Callable[[float, str], None]


class Progress:
    """Counts finished items of ``total``; ``report(percent, message)`` reaches the scheduler."""

    def __init__(self, total: int, description: str, report: Report | None = None):
        self.total = max(total, 1)
        self.done = 0
        self.report = report
        self.bar = tqdm(total=total, desc=description, unit="video", disable=None, leave=False)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def advance(self, message: str) -> None:
        """One more item done; ``message`` names it."""
        self.done += 1
        self.bar.update(1)
        if self.report is not None:
            self.report(100.0 * self.done / self.total, f"{self.done}/{self.total} {message}")
