"""Helpers shared by the example scripts: a progress display and the optional matplotlib import.

The examples import them as ``from _common import Progress, pyplot`` after putting their own folder first on
``sys.path``, so this works both for ``python examples/NAME.py`` and for tests that load a script by path.
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


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend, or None (with a note on stderr) when matplotlib
    is not installed: the examples then write their tables and skip the figure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed, so no figure was written (the tables were). Install the "
              "examples extra: pip install -e '.[examples]'", file=sys.stderr)
        return None
    return plt
