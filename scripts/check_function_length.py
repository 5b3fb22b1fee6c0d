"""Fail when a function in src/fasterpose is longer than 80 lines (``def`` line to last line).

A function that is a table of data (a literal spelled out line by line) may say so with the comment
``# length: data table`` on its ``def`` line; it is listed, not counted. Run from anywhere:
``python scripts/check_function_length.py [--max N] [--json]``. ``scripts/test.sh`` runs it.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "fasterpose"
EXEMPT = "# length: data table"


def function_lengths(root: Path = ROOT) -> list[tuple[str, str, int, bool]]:
    """(file, qualified name, lines, exempt) for every function and method under ``root``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()

        def visit(
            node: ast.AST, prefix: str, rel: str = str(path.relative_to(root.parent)), lines: list[str] = lines
        ) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    n = (child.end_lineno or child.lineno) - child.lineno + 1
                    found.append((rel, prefix + child.name, n, EXEMPT in lines[child.lineno - 1]))
                    visit(child, f"{prefix}{child.name}.")
                elif isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.")

        visit(ast.parse(source, str(path)), "")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=80, help="longest allowed function (lines)")
    parser.add_argument("--json", action="store_true", help="print the offenders as JSON")
    args = parser.parse_args(argv)
    rows = function_lengths()
    long = [r for r in rows if r[2] > args.max and not r[3]]
    tables = [r for r in rows if r[2] > args.max and r[3]]
    if args.json:
        print(json.dumps({"max": args.max, "too_long": long, "data_tables": tables}))
    for rel, name, n, _ in long:
        print(f"{rel}: {name} is {n} lines (max {args.max})")
    for rel, name, n, _ in tables:
        print(f"{rel}: {name} is {n} lines (data table, exempt)")
    print(f"function length: {len(rows)} functions, {len(long)} longer than {args.max} lines")
    return 1 if long else 0


if __name__ == "__main__":
    sys.exit(main())
