"""docs/reliability.md: every row of the fault table points at a test that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF = re.compile(r"`(test_[\w]+\.py)::(test_\w+)`")


def test_every_row_names_an_existing_test() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| fault")]
    rows = [r for r in rows if not set(r) <= set("|- ")]
    assert len(rows) >= 15
    stated = re.search(r"Faults listed: (\d+) rows", text)
    assert stated and int(stated[1]) == len(rows), f"the count line says {stated and stated[1]}, rows: {len(rows)}"
    for row in rows:
        refs = REF.findall(row)
        assert refs, f"row without a test: {row}"
        for file, name in refs:
            source = (ROOT / "tests" / file).read_text(encoding="utf-8")
            assert re.search(rf"^def {name}\(", source, re.MULTILINE), f"{file}::{name} does not exist ({row[:60]})"
