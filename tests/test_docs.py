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
