"""The docs check: links and images resolve, quoted ``fasterpose`` command lines parse."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_docs", ROOT / "scripts" / "check_docs.py")
assert _spec is not None and _spec.loader is not None
check_docs = importlib.util.module_from_spec(_spec)
sys.modules["check_docs"] = check_docs
_spec.loader.exec_module(check_docs)


def test_readme_and_docs_links_and_commands_are_true() -> None:
    problems = check_docs.check(ROOT)
    assert not problems, "\n".join(map(str, problems))


def test_check_reports_broken_links_anchors_commands_and_flags(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Real section\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        "# T\n\n"
        "See [guide](docs/guide.md#real-section) and ![img](docs/missing.png) and [x](docs/guide.md#nope).\n\n"
        "```bash\n"
        "fasterpose eval-results r.json --ann a.json --no-such-flag  # comment --ignored\n"
        "fasterpose bench latency \\\n  --json --bogus-option\n"
        "fasterpose frobnicate x\n"
        "```\n\n"
        "Inline: `fasterpose data check --ann A --images D` and `from fasterpose import Predictor`.\n",
        encoding="utf-8",
    )
    texts = [p.text for p in check_docs.check(tmp_path)]
    assert any("docs/missing.png" in t for t in texts)
    assert any("#nope" in t for t in texts)
    assert not any("real-section" in t for t in texts)
    assert any("eval-results` has no option --no-such-flag" in t for t in texts)
    assert not any("--ignored" in t for t in texts)
    assert any("bench latency` has no option --bogus-option" in t for t in texts)
    assert not any("--json" in t for t in texts)
    assert any("frobnicate" in t for t in texts)
    assert not any("data check" in t for t in texts)
    assert not any("import" in t for t in texts)
    assert len(texts) == 5, texts


def _load_script(name: str):  # noqa: ANN202 - a module
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bench_tables = _load_script("bench_tables")


def test_measured_tables_are_their_committed_json() -> None:
    stale = {
        str(p.relative_to(ROOT)): p
        for p, prefix in bench_tables.doc_files(ROOT).items()
        if bench_tables.render(p.read_text(), prefix) != p.read_text()
    }
    assert not stale, f"run python scripts/bench_tables.py: {sorted(stale)}"
    blocks = [m.group(2) for p in bench_tables.doc_files(ROOT) for m in bench_tables.BLOCK.finditer(p.read_text())]
    assert set(blocks) == set(bench_tables.TABLES), "every table is quoted somewhere, and only known ones"


def test_a_typed_figure_in_a_bench_table_is_caught() -> None:
    readme = (ROOT / "README.md").read_text()
    m = next(bench_tables.BLOCK.finditer(readme))
    edited = readme[: m.start(3)] + m.group(3).replace("|", "| 999 |", 1) + readme[m.end(3) :]
    assert bench_tables.render(edited, "docs/bench/") == readme
    assert edited != readme
