"""Size on disk of the two installs the README offers: the torch-free runtime and the full one.

    python scripts/bench_install_size.py --out docs/bench/install_size.json      (~3 min, ~7 GB of disk)

Each install goes into a new virtual environment under a temporary folder, from this checkout
(``pip install "<checkout>[runtime]"`` and ``pip install torch==2.14.1 torchvision==0.29.1
"<checkout>[train,deploy]"``, the pins of ``scripts/setup.sh``); the size is that of the whole venv
(``du``-style: every file's allocated blocks), with the largest packages listed. The venvs are deleted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from fasterpose.bench.provenance import emit, finish, provenance

ROOT = Path(__file__).resolve().parents[1]
INSTALLS = {
    "runtime": [f"{ROOT}[runtime]"],
    "train,deploy": ["torch==2.14.1", "torchvision==0.29.1", f"{ROOT}[train,deploy]"],
}


def disk_bytes(path: Path) -> int:
    """Allocated bytes of every file under ``path`` (what ``du`` counts), links not followed."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                continue
    return total


def largest(site: Path, n: int = 5) -> dict[str, float]:
    sizes = {p.name: disk_bytes(p) for p in site.iterdir() if p.is_dir() and not p.name.endswith("-info")}
    return {k: round(v / 2**20, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:n]}


def measure(name: str, packages: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fp_install_") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-cache-dir"]
        subprocess.run([*pip, *packages], check=True)
        site = next((venv / "lib").glob("python*/site-packages"))
        probe = "import importlib.util as u; print(u.find_spec('torch') is not None)"
        has_torch = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True)
        return {
            "install": f'pip install "fasterpose[{name}]"',
            "packages": packages,
            "venv_mib": round(disk_bytes(venv) / 2**20, 1),
            "largest_packages_mib": largest(site),
            "torch_installed": has_torch.stdout.strip() == "True",
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    prov = provenance()
    report = {"python": sys.version.split()[0], "installs": [measure(k, v) for k, v in INSTALLS.items()]}
    report["provenance"] = finish(prov)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
