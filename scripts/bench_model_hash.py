"""What the content-hash check costs at load, per model-file kind, for FasterPose-R50 (~100 MB of weights).

Writes the model of ``--config`` (random init) as a checkpoint, a weights file, an ``.onnx`` and an
OpenVINO IR, then times the hash check each load runs (:mod:`fasterpose.integrity`): the tensor hash
of a loaded state dict (``.pth`` / ``.safetensors``), :func:`verify_onnx` and :func:`verify_openvino`
(file reads included). Best of ``--repeat`` runs, the page cache warm (the load itself reads the file
too), so this is the hashing cost, not the disk's.

    python scripts/bench_model_hash.py [--config CONFIG] [--out docs/bench/model_hash_amx.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.config import load_config
from fasterpose.deploy.export import export_model
from fasterpose.integrity import tensors_sha256, verify_onnx, verify_openvino
from fasterpose.models.pose_model import PoseModel
from fasterpose.models.weights_file import save_weights

ROOT = Path(__file__).resolve().parents[1]


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return round(min(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "fasterpose_r50_256x192.yaml"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", help="write the JSON here too")
    args = parser.parse_args()
    cfg = load_config(args.config, ["model.pretrained=false"])
    model = PoseModel.from_config(cfg, pretrained=False).eval()
    state = model.state_dict()
    with tempfile.TemporaryDirectory() as tmp:
        weights = save_weights(model, cfg, Path(tmp) / "m.safetensors")
        onnx = export_model(model, cfg, Path(tmp) / "m.onnx", "onnx")
        xml = export_model(model, cfg, Path(tmp) / "m.xml", "openvino")
        sizes = {
            "weights_file": weights.stat().st_size,
            "onnx": onnx.stat().st_size,
            "openvino_xml_plus_bin": xml.stat().st_size + xml.with_suffix(".bin").stat().st_size,
        }
        block = provenance()
        ms = {
            "tensors_sha256 (.pth / .safetensors, state dict in memory)": best_ms(
                lambda: tensors_sha256(state), args.repeat
            ),
            "verify_onnx (.onnx file)": best_ms(lambda: verify_onnx(onnx), args.repeat),
            "verify_openvino (.xml + .bin files)": best_ms(lambda: verify_openvino(xml), args.repeat),
        }
    report = {
        "config": str(Path(args.config).relative_to(ROOT) if Path(args.config).is_relative_to(ROOT) else args.config),
        "parameters": sum(p.numel() for p in model.parameters()),
        "bytes": sizes,
        "hash_check_ms_best_of": args.repeat,
        "hash_check_ms": ms,
        "torch": torch.__version__,
        "provenance": finish(block),
    }
    emit(report, args.out)


if __name__ == "__main__":
    main()
