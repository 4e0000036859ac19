"""Output: rich progress on a terminal, plain lines in CI or when piped."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # rich is imported only when something is drawn on a terminal (start-up time)
    from rich.console import Console
    from rich.progress import Progress, TaskID


def interactive() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI") and not os.environ.get("KM_PLAIN")


class Bar(Protocol):
    def advance(self, amount: int) -> None: ...


class _RichBar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def advance(self, amount: int) -> None:
        self._progress.update(self._task, advance=amount)


class _NullBar:
    def advance(self, amount: int) -> None:
        pass


def _amount_column() -> Any:
    """Bytes for transfers, ``done/total unit`` for counted work (targets)."""
    from rich.progress import DownloadColumn, ProgressColumn, Task, TransferSpeedColumn
    from rich.text import Text

    class _AmountColumn(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self._bytes = DownloadColumn()
            self._speed = TransferSpeedColumn()

        def render(self, task: Task) -> Text:
            unit = task.fields.get("unit", "bytes")
            if unit == "bytes":
                return Text.assemble(self._bytes.render(task), " ", self._speed.render(task))
            return Text(f"{int(task.completed)}/{int(task.total or 0)} {unit}", style="progress.download")

    return _AmountColumn()


class Reporter:
    """Say what is happening. ``step`` lines always; bars only when interactive."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self._console_made: Console | None = None
        self._progress: Progress | None = None

    @property
    def _console(self) -> Console:
        if self._console_made is None:
            from rich.console import Console

            self._console_made = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._console_made

    def step(self, message: str) -> None:
        if not self.quiet:
            self._print(f"==> {message}")

    def info(self, message: str) -> None:
        if not self.quiet:
            self._print(f"    {message}")

    def warn(self, message: str) -> None:
        self._print(f"warning: {message}")

    def _print(self, line: str) -> None:
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
        elif interactive():
            self._console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    @contextmanager
    def progress(self) -> Iterator[None]:
        """A scope in which :meth:`bar` draws live bars (on a terminal)."""
        if not interactive() or self.quiet or self._progress is not None:
            yield
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            _amount_column(),
            TimeElapsedColumn(),
            console=self._console,
            transient=True,
        )
        self._progress = progress
        try:
            with progress:
                yield
        finally:
            self._progress = None

    @contextmanager
    def bar(self, description: str, total: int, *, unit: str = "bytes") -> Iterator[Bar]:
        if self._progress is None:
            yield _NullBar()
            return
        task = self._progress.add_task(description, total=total, unit=unit)
        try:
            yield _RichBar(self._progress, task)
        finally:
            self._progress.remove_task(task)
