"""Progress for the ``gradtx`` command: a bar on a terminal, lines in a log.

On a terminal (the stream is a tty and ``rich`` is installed: the ``cli``
and ``examples`` extras have it) one live bar shows what runs now, the
fraction done, the time spent and an estimate of the time left. Anywhere
else (a pipe, a log file, a CI job) a ``\\r``-redrawn bar would become one
long line, so a few plain lines are printed instead, each complete.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO


def _seconds(s: float) -> str:
  return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"


class Progress:
  """Counts ``total`` units of work; see the module docstring.

  Use it as a context manager. ``advance`` moves the count and may change
  the description (what runs now); ``log`` prints a line that stays (above
  the bar on a terminal). ``lines`` is how many plain progress lines a log
  gets over the whole run.
  """

  def __init__(self, total: int, description: str = "", *,
               unit: str = "steps", stream: Optional[TextIO] = None,
               lines: int = 5, terminal: Optional[bool] = None):
    self.total, self.done = max(1, total), 0
    self.description, self.unit = description, unit
    self.stream = sys.stderr if stream is None else stream
    self.lines = max(1, lines)
    self._next_line = 1
    self._start = time.perf_counter()
    self._first: Optional[tuple[float, int]] = None  # (time, count)
    if terminal is None:
      terminal = bool(getattr(self.stream, "isatty", lambda: False)())
    self._bar: Any = None
    if terminal:
      try:
        from rich import progress as rp
        from rich.console import Console
      except ImportError:  # the plain lines still work
        pass
      else:
        self._bar = rp.Progress(
            rp.SpinnerColumn(), rp.TextColumn("{task.description}"),
            rp.BarColumn(), rp.MofNCompleteColumn(), rp.TimeElapsedColumn(),
            rp.TextColumn("left"), rp.TimeRemainingColumn(),
            console=Console(file=self.stream, force_terminal=True),
            transient=False)
        self._task = self._bar.add_task(description, total=self.total)

  def __enter__(self) -> "Progress":
    if self._bar is not None:
      self._bar.start()
    else:
      self._write(f"  {self.description}...")
    return self

  def __exit__(self, *exc) -> None:
    if self._bar is not None:
      self._bar.stop()

  @property
  def terminal(self) -> bool:
    """Whether a live bar is drawn (else plain lines)."""
    return self._bar is not None

  def advance(self, n: int = 1, description: Optional[str] = None) -> None:
    self.done = min(self.total, self.done + n)
    if self._first is None and self.done:
      self._first = (time.perf_counter(), self.done)
    if description is not None:
      self.description = description
    if self._bar is not None:
      self._bar.update(self._task, completed=self.done,
                       description=self.description)
      return
    # Plain: one line each time another 1/lines of the work is done.
    if self.done * self.lines >= self._next_line * self.total:
      while self.done * self.lines >= self._next_line * self.total:
        self._next_line += 1
      now = time.perf_counter()
      elapsed, (t1, n1) = now - self._start, self._first
      # The rate since the first count: what came before it (imports,
      # compiling) does not repeat.
      eta = ""
      if n1 < self.done < self.total:
        left = (now - t1) * (self.total - self.done) / (self.done - n1)
        eta = f", about {_seconds(left)} left"
      self._write(f"  [{100 * self.done // self.total:3d}%] "
                  f"{self.description}: {self.done}/{self.total} {self.unit}, "
                  f"{_seconds(elapsed)} so far{eta}")

  def describe(self, description: str) -> None:
    """Says what runs now (e.g. "compiling"), without advancing."""
    self.advance(0, description)

  def log(self, text: str) -> None:
    if self._bar is not None:
      self._bar.console.print(text, highlight=False, markup=False)
    else:
      self._write(text)

  def _write(self, text: str) -> None:
    self.stream.write(text + "\n")
    self.stream.flush()
