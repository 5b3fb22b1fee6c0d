"""The error types of bad input data: each message names the file, the entry and the problem.

All are ``ValueError`` subclasses, so the command line prints them as one line.
"""

from __future__ import annotations


class DataError(ValueError):
    """Input data (annotations, results, detections, images) that cannot be used as it is."""


class AnnotationError(DataError):
    """An annotation file that is missing, not valid JSON, or not in the expected layout."""


MAX_LISTED = 3  # problems quoted in one error message; the rest are counted


def summarize(problems: list[str], hint: str = "") -> str:
    """One line: the first problems (the file named once), then how many more there are."""
    first = problems[:MAX_LISTED]
    prefix = first[0].split(": ", 1)[0] + ": " if first and ": " in first[0] else ""
    shown = "; ".join([first[0], *(p[len(prefix) :] if prefix and p.startswith(prefix) else p for p in first[1:])])
    more = len(problems) - MAX_LISTED
    tail = f" (and {more} more problem{'s' if more > 1 else ''}{hint})" if more > 0 else ""
    return shown + tail
