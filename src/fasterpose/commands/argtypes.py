"""Range-checked numbers for command-line options: ``type=number(0, 1)`` and the like.

Every numeric option of every command goes through :func:`number`, so ``--threshold nan``,
``--det-threshold 2`` or ``--max-frames 0`` is a one-line usage error naming the option, the value
and the range, before any work (argparse adds the option's name to the message).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
    low_open: bool = False,
) -> Callable[[str], float]:
    """An argparse ``type``: a finite number (an integer with ``integer``) in ``[low, high]``
    (``(low, high]`` with ``low_open``); None leaves that side unbounded."""
    kind = "a whole number" if integer else "a number"
    if low is not None and high is not None:
        what = f"{kind} from {low:g} to {high:g}" if not low_open else f"{kind} above {low:g} and at most {high:g}"
    elif low is not None:
        what = f"{kind} above {low:g}" if low_open else f"{kind} of at least {low:g}"
    elif high is not None:
        what = f"{kind} of at most {high:g}"
    else:
        what = f"a finite {kind.removeprefix('a ')}"

    def parse(text: str) -> float:
        try:
            value: float = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if (
            not math.isfinite(value)
            or (low is not None and (value <= low if low_open else value < low))
            or (high is not None and value > high)
        ):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = "number"  # argparse names the type in some messages
    return parse


def count(low: int = 1) -> Callable[[str], float]:
    """A whole number of at least ``low`` (1: a count of frames, images, runs, seeds)."""
    return number(low, integer=True)


SCORE = number(0.0, 1.0)  # a probability-like score threshold
