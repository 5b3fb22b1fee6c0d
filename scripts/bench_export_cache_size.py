"""Size of one entry of the ``.pth`` -> ONNX export cache (``fasterpose.deploy.export_cache``), per config.

Builds each config's model with random init and runs it through the cache exactly as ``Predictor`` /
``eval --model`` do for a torch file on ONNX Runtime or OpenVINO (``cached_onnx``), in a temporary
cache folder, and reports the cached file's size. Sizes are deterministic (no timing): any machine
gives the same.

    python scripts/bench_export_cache_size.py [--configs A.yaml B.yaml] [--out sizes.json]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.config import load_config
from fasterpose.models.pose_model import PoseModel

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["configs/quickstart.yaml", "configs/fasterpose_r50_256x192.yaml", "configs/fasterpose_r152_384x288.yaml"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT)
    parser.add_argument("--out", help="write the JSON here too")
    args = parser.parse_args()
    prov = provenance()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FASTERPOSE_CACHE_DIR"] = tmp
        from fasterpose.deploy.export_cache import MAX_ENTRIES, cached_onnx

        for name in args.configs:
            cfg = load_config(ROOT / name, ["model.pretrained=false"])
            model = PoseModel.from_config(cfg, pretrained=False).eval()
            source = Path(tmp) / f"{Path(name).stem}.key"  # the cache key hashes a file: one per config
            source.write_text(name)
            entry = cached_onnx(source, cfg, lambda _p, c, m=model: (m, c))
            params = sum(p.numel() for p in model.parameters())
            rows.append(
                {
                    "config": name,
                    "parameters": params,
                    "bytes": entry.stat().st_size,
                    "mib": round(entry.stat().st_size / 2**20, 1),
                }
            )
    report = {
        "what": "bytes of one cached ONNX export (fp32) per config; the cache keeps the newest MAX_ENTRIES",
        "max_entries": MAX_ENTRIES,
        "rows": rows,
        "torch": torch.__version__,
        "provenance": finish(prov),
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
