"""Progress display shared by the example scripts: tqdm when installed, else one line per unit on stderr.

The examples import it as ``from _progress import Progress`` after putting their own folder first on
``sys.path``, so it works both for ``python examples/NAME.py`` and for tests that load a script by path.
"""
from __future__ import annotations

import sys


class Progress:
    """A bar over ``total`` units of work (``update`` once per finished unit); silent with ``quiet``."""

    def __init__(self, total: int, quiet: bool = False, unit: str = "run"):
        self.total, self.done, self.quiet, self.bar = total, 0, quiet, None
        if not quiet:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, msg: str, seconds: float | None = None) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(msg, refresh=False)
            self.bar.update(1)
        elif not self.quiet:
            took = "" if seconds is None else f" ({seconds:.1f} s)"
            print(f"[{self.done:>3}/{self.total}] {msg}{took}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
