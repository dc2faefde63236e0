"""The one Rich console (on stderr, so stdout stays clean for --json and `-o -`), messages and progress."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console

console = Console(stderr=True, highlight=False)
quiet = False


def info(msg: str, force: bool = False) -> None:
    if force or not quiet:
        console.print(msg, markup=False, soft_wrap=True)


def warn(msg: str) -> None:
    console.print(f"warning: {msg}", style="yellow", markup=False, soft_wrap=True)


def error(msg: str) -> None:
    console.print(f"error: {msg}", style="bold red", markup=False, soft_wrap=True)


def is_tty() -> bool:
    return sys.stderr.isatty() and console.is_terminal


class _NoBar:
    def advance(self, n: int = 1) -> None:
        pass

    def part(self, done: int, total: int) -> None:
        pass


class _Bar:
    """Items done out of the total, and the parts (tiles) of the item in progress."""

    def __init__(self, bar, task) -> None:
        self.bar, self.task, self.sub = bar, task, None

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task, n)
        if self.sub is not None:
            self.bar.remove_task(self.sub)
            self.sub = None

    def part(self, done: int, total: int) -> None:
        if total <= 1:
            return
        if self.sub is None:
            self.sub = self.bar.add_task("  tiles", total=total)
        self.bar.update(self.sub, completed=done, total=total)


@contextmanager
def progress(total: int, label: str):
    """A Rich progress bar on a TTY (not with --quiet); elsewhere a no-op. Yields an object with advance(n=1)
    (one item done) and part(done, total) (progress inside the current item, e.g. tiles of a large image)."""
    if quiet or not is_tty():
        yield _NoBar()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        yield _Bar(bar, bar.add_task(label, total=total))


@contextmanager
def training_progress(total_steps: int):
    """On a TTY (not --quiet): a Rich bar of steps with the last loss and steps/s. Yields on_step(step, record)."""
    if quiet or not is_tty():
        yield lambda step, rec: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = None

        def on_step(step: int, rec: dict | None) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task("train", total=total_steps, completed=step, info="")
            if rec is not None:
                bar.update(task, info=f"loss {rec['loss']:.4f}  {rec['steps_per_s']:.2f} steps/s")
            bar.update(task, completed=step)

        yield on_step
