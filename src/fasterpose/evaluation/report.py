"""Plain-text tables of evaluation metrics."""

from __future__ import annotations

from collections.abc import Mapping


def format_table(metrics: Mapping[str, object], title: str | None = None) -> str:
    """Two-column ``name | value`` table; floats to 4 decimals (COCO stats) or 2 (PCKh percent)."""
    rows = []
    for name, value in metrics.items():
        rows.append((str(name), _fmt(value)))
    width = max([len(n) for n, _ in rows] + [6])
    vwidth = max([len(v) for _, v in rows] + [5])
    line = f"+-{'-' * width}-+-{'-' * vwidth}-+"
    out = []
    if title:
        out.append(title)
    out.append(line)
    out.append(f"| {'metric'.ljust(width)} | {'value'.rjust(vwidth)} |")
    out.append(line)
    out.extend(f"| {n.ljust(width)} | {v.rjust(vwidth)} |" for n, v in rows)
    out.append(line)
    return "\n".join(out)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) <= 1.0 else f"{value:.2f}"
    return str(value)
