"""The one Rich console (on stderr, so stdout stays clean for --json and `-o -`), messages and progress."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console

console = Console(stderr=True, highlight=False)
quiet = False


def info(msg: str) -> None:
    if not quiet:
        console.print(msg, markup=False, soft_wrap=True)


def warn(msg: str) -> None:
    console.print(f"warning: {msg}", style="yellow", markup=False, soft_wrap=True)


def error(msg: str) -> None:
    console.print(f"error: {msg}", style="bold red", markup=False, soft_wrap=True)


def is_tty() -> bool:
    return sys.stderr.isatty() and console.is_terminal


@contextmanager
def progress(total: int, label: str):
    """A Rich progress bar on a TTY (not with --quiet); elsewhere a no-op advance(). Yields advance(n=1)."""
    if quiet or not is_tty():
        yield lambda n=1: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n=1: bar.advance(task, n)
