"""AP of a checkpoint and of its exports (fp32 ONNX, OpenVINO bf16 IR, INT8 ONNX and IR), each through
``fasterpose eval CONFIG --model FILE``, on one validation set. Writes one JSON report.

    python scripts/bench_deploy_ap.py --checkpoint runs/quickstart/last.pth --config configs/quickstart.yaml \\
        --set data.root=data/synthpose --out docs/bench/deploy_ap_quickstart.json

The exports are written next to the JSON (``--work``, default a temporary folder). The bf16 row needs a
CPU with bf16 (AVX512-BF16 or AMX); elsewhere it is reported as skipped, never run at another precision.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fasterpose.bench.provenance import emit, finish, provenance


def run_cli(argv: list[str]) -> tuple[int, str]:
    from fasterpose.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    return rc, buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--config", required=True, help="the validation config (data and eval settings)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for --config")
    parser.add_argument("--calib-limit", type=int, default=64)
    parser.add_argument("--work", help="folder for the exported files (default: a temporary one)")
    parser.add_argument("--out", help="write the JSON report here too")
    args = parser.parse_args(argv)

    from fasterpose.runtimes.device import has_bf16

    prov = provenance()
    tmp = tempfile.TemporaryDirectory()
    work = Path(args.work or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = str(args.checkpoint)
    exports = [  # name, format, precision, file, runtimes to evaluate it on
        ("onnx_fp32", "onnx", "fp32", work / "model_fp32.onnx", ["onnxruntime", "openvino"]),
        ("openvino_bf16", "openvino", "bf16", work / "model_bf16.xml", ["openvino"]),
        ("onnx_int8", "onnx", "int8", work / "model_int8.onnx", ["onnxruntime", "openvino"]),
        ("openvino_int8", "openvino", "int8", work / "model_int8.xml", ["openvino"]),
    ]
    commands: list[str] = []
    for _, fmt, precision, path, _ in exports:
        cmd = ["export", "--checkpoint", ckpt, "--format", fmt, "--precision", precision, "--out", str(path)]
        if precision == "int8":
            cmd += ["--calib-config", args.config, "--calib-limit", str(args.calib_limit), "--set", *args.set]
        rc, out = run_cli([*cmd, "--json"])
        if rc != 0:
            raise SystemExit(f"fasterpose {' '.join(cmd)} failed")
        commands.append("fasterpose " + " ".join(cmd))
        print(f"exported {path.name}: {json.loads(out)['source']}", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    # torch bf16 autocast of the checkpoint: bf16 arithmetic where no CPU bf16 runtime exists (emulated, slow)
    evals = [("checkpoint", "fp32", ckpt, "torch"), ("checkpoint_autocast", "bf16", ckpt, "torch")]
    evals += [(name, precision, str(path), rt) for name, _, precision, path, rts in exports for rt in rts]
    bf16 = has_bf16()
    for name, precision, model, runtime in evals:
        if precision == "bf16" and runtime == "openvino" and not bf16:
            rows.append({"model": name, "precision": precision, "runtime": runtime, "skipped": "no bf16 on this CPU"})
            continue
        cmd = ["eval", args.config, "--model", model, "--runtime", runtime, *args.set]
        cmd += ["--out", str(work / f"eval_{name}_{runtime}"), "--json", "--no-progress"]
        if runtime == "torch":  # exported files run at the precision they carry
            cmd += ["--device", "cpu", "--precision", precision]
        t0 = time.perf_counter()
        rc, out = run_cli(cmd)
        if rc != 0:
            raise SystemExit(f"fasterpose {' '.join(cmd)} failed")
        metrics = json.loads(out.strip().splitlines()[-1])
        rows.append({"model": name, "file": Path(model).name, **metrics, "seconds": round(time.perf_counter() - t0, 1)})
        commands.append("fasterpose " + " ".join(cmd))
        print(f"{name:14s} {runtime:12s} {metrics['precision']:5s} AP {metrics['AP']:.4f}", file=sys.stderr)
    ref = rows[0]["AP"]
    for r in rows[1:]:
        if "AP" in r:
            r["AP_minus_checkpoint"] = round(r["AP"] - ref, 5)
            r["within_0.01"] = abs(r["AP"] - ref) <= 0.01
    report = {
        "checkpoint": ckpt,
        "config": args.config,
        "overrides": args.set,
        "provenance": finish(prov),
        "cpu_bf16": bf16,
        "threads": os.environ.get("OMP_NUM_THREADS", "all"),
        "rows": rows,
        "commands": commands,
    }
    emit(report, args.out)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
