"""Old-vs-new timing helpers: the import rewrite and the interleaved comparison's arithmetic."""

from __future__ import annotations

import textwrap
from pathlib import Path

from fasterpose.bench.baseline import compare_old_new, rewrite_imports

CHILD = textwrap.dedent(
    """
    import sys
    from fasterpose.bench.baseline import serve_blocks

    variant = sys.argv[sys.argv.index("--child") + 1]
    assert sys.argv[-2:] == ["--baseline", "rev0"], sys.argv
    seconds = {"old": 0.2, "new": 0.1}[variant]
    tag = sys.argv[sys.argv.index("--tag") + 1]

    def block(state):
        state["blocks"] += 1
        return seconds

    serve_blocks(
        lambda: {"blocks": 0},
        block,
        lambda s: {"sha256": tag if variant == "old" else "same", "faults_per_image": s["blocks"] * 1.5},
    )
    """
)


def test_rewrite_imports_renames_only_the_package() -> None:
    src = "import fasterpose\nfrom fasterpose.data import x\nimport fasterpose_base\ny = 'src/fasterpose.txt'\n"
    out = rewrite_imports(src, "fp_old")
    assert out == "import fp_old\nfrom fp_old.data import x\nimport fasterpose_base\ny = 'src/fasterpose.txt'\n"


def test_compare_old_new_reports_each_side_from_its_own_blocks(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    same = compare_old_new(script, ["--tag", "same"], blocks=4, per_block=10, unit="image", revision="rev0")
    assert same["revision"] == "rev0" and same["images_per_block"] == 10 and same["blocks"] == 4
    assert same["old_images_per_second_per_core"] == 50.0  # 4 blocks of 10 in 4 x 0.2 s
    assert same["new_images_per_second_per_core"] == 100.0
    assert same["cpu_ratio_old_over_new_median"] == 2.0 and same["cpu_ratio_old_over_new_of_totals"] == 2.0
    assert same["old_page_faults_per_image"] == same["new_page_faults_per_image"] == 6.0
    assert same["same_bytes"] is True
    other = compare_old_new(script, ["--tag", "other"], blocks=2, per_block=10, unit="image", revision="rev0")
    assert other["same_bytes"] is False
