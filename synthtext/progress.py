"""Progress of the long stages (PII scan, DP training, generation), shown the same way by all three.

* On a terminal (``stream.isatty()``, or a Jupyter kernel writing to ``sys.stderr``): a tqdm bar.
* Anywhere else (a log file, a pipe, a CI console): plain lines, flushed as written — one at the start,
  then one every ``every_fraction`` of the total or every ``every_seconds``, whichever comes first,
  but never more often than every ``min_interval`` seconds, and one at the end::

      DP training: step 12/40 (30%) loss 3.412 epsilon spent 4.21 elapsed 1m02s, about 2m25s left
      generating: 256/500 texts (51%) 3.1 texts/s elapsed 1m22s, about 1m18s left

  The estimate is elapsed / done * (total - done).
* ``enabled=False``: nothing at all.

The clock and the stream are injectable, so tests are fast and deterministic.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable, Mapping, TextIO

__all__ = ["Progress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``45s``, ``1m02s``, ``2h05m``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """One stage's progress: a tqdm bar on a terminal, plain lines elsewhere, nothing when disabled.

    Args:
        total: units of work (steps, texts); None if unknown (then no percentage or estimate).
        desc: what is running, e.g. ``"generating"``; starts every line.
        unit: one unit, for the bar (``"text"``); lines use ``units`` (default ``unit + "s"``).
        counter: how lines show the count, a format with ``{n}``, ``{total}`` and ``{units}``
            (default ``"{n}/{total} {units}"``; training uses ``"step {n}/{total}"``).
        show_rate: lines show ``3.1 texts/s``.
        enabled: False shows nothing.
        stream: where to write (default: ``sys.stderr`` at construction).
        every_fraction, every_seconds, min_interval: when lines are written (see the module).
        clock: seconds, monotonic (default ``time.monotonic``).
        leave: the bar stays on screen when closed.
        bar_names: shorter names of fields for the bar's postfix, e.g. ``{"epsilon spent": "eps"}``.

    ``mode`` is ``"off"``, ``"bar"`` or ``"lines"``. Use :meth:`update` as work is done (with the
    current ``fields``, e.g. ``{"loss": "3.412"}``) and :meth:`close` at the end (also as a
    context manager).
    """

    def __init__(self, total: int | None, desc: str, *, unit: str = "it", units: str | None = None,
                 counter: str | None = None, show_rate: bool = False, enabled: bool = True,
                 stream: TextIO | None = None, every_fraction: float = 0.1, every_seconds: float = 30.0,
                 min_interval: float = 2.0, clock: Callable[[], float] = time.monotonic, leave: bool = True,
                 bar_names: Mapping[str, str] | None = None):
        self.total, self.desc, self.unit = total, desc, unit
        self.units = units if units is not None else unit + "s"
        self.counter = counter if counter is not None else "{n}/{total} {units}"
        self.show_rate, self.clock = show_rate, clock
        self.every_fraction, self.every_seconds, self.min_interval = every_fraction, every_seconds, min_interval
        self.bar_names = dict(bar_names or {})
        self.stream = stream if stream is not None else sys.stderr
        self.n, self.fields = 0, {}
        self.start = clock()
        self.bar = None
        self._closed = False
        self._last_line_time: float | None = None
        self._last_line_state = None
        self._bucket = 0
        if not enabled:
            self.mode = "off"
        elif self._is_tty():
            self.mode = "bar"
            self._open_bar(leave)
        else:
            self.mode = "lines"
            self._line()

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def _is_tty(self) -> bool:
        try:
            if self.stream.isatty():
                return True
        except (AttributeError, ValueError):  # no isatty, or a closed stream
            return False
        return self.stream is sys.stderr and _in_notebook()

    def _open_bar(self, leave: bool) -> None:
        if self.stream is sys.stderr and _in_notebook():
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
        self.bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=self.stream, dynamic_ncols=True,
                        leave=leave)

    def set_fields(self, fields: Mapping[str, str]) -> None:
        """Replace the fields shown after the count (``{"loss": "3.412", "epsilon spent": "4.21"}``)."""
        self.fields = {k: v for k, v in fields.items() if v is not None}
        if self.bar is not None:
            self.bar.set_postfix({self.bar_names.get(k, k): v for k, v in self.fields.items()}, refresh=False)

    def update(self, n: int = 1, fields: Mapping[str, str] | None = None) -> None:
        """``n`` more units done; ``fields`` (optional) replace the fields shown."""
        if self.mode == "off" or self._closed:
            return
        if fields is not None:
            self.set_fields(fields)
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = self.clock()
        finished = self.total is not None and self.n >= self.total
        bucket = self._bucket_of(self.n)
        due = bucket > self._bucket or now - self._last_line_time >= self.every_seconds
        if finished or (due and now - self._last_line_time >= self.min_interval):
            self._line(now)

    __call__ = update

    def close(self) -> None:
        """End: the bar is closed; in lines mode a last line is written unless the last one says it all."""
        if self._closed:
            return
        self._closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "lines" and self._state() != self._last_line_state:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------

    def _bucket_of(self, n: int) -> int:
        if not self.total or self.every_fraction <= 0:
            return 0
        return math.floor(n / self.total / self.every_fraction + 1e-9)

    def _state(self):
        return self.n, tuple(self.fields.items())

    def format_line(self, now: float | None = None) -> str:
        """The line for the current state (without the newline)."""
        now = self.clock() if now is None else now
        elapsed = max(0.0, now - self.start)
        total = "?" if self.total is None else self.total
        parts = [f"{self.desc}: " + self.counter.format(n=self.n, total=total, units=self.units)]
        if self.total:
            parts.append(f"({min(100, math.floor(100 * self.n / self.total + 1e-9))}%)")
        if self.show_rate and self.n and elapsed > 0:
            parts.append(f"{self.n / elapsed:.1f} {self.units}/s")
        parts.extend(f"{k} {v}" for k, v in self.fields.items())
        text = " ".join(parts) + f" elapsed {format_duration(elapsed)}"
        if self.total is not None and 0 < self.n < self.total:
            text += f", about {format_duration(elapsed / self.n * (self.total - self.n))} left"
        return text

    def _line(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        try:
            self.stream.write(self.format_line(now) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not stop the work
            pass
        self._last_line_time, self._last_line_state = now, self._state()
        self._bucket = self._bucket_of(self.n)
