"""What the damaged-image check costs per decode: ``fasterpose.data.image_io.decode_image`` (OpenCV's
decode with libjpeg's / libpng's ``stderr`` lines caught, see ``_decode_captured``) against a bare
``cv2.imdecode``, interleaved, one OpenCV thread, on the same encoded bytes:

    python scripts/bench_image_integrity.py --out docs/bench/image_integrity.json

Images: the real COCO val images of ``../shared/data/coco_mini`` when present, and generated
640x480 JPEG and PNG. Reported: median microseconds per decode of each, and their difference.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from fasterpose.bench.provenance import emit, finish, provenance
from fasterpose.data.image_io import decode_image

COCO_VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_mini" / "val2017"


def _generated(ext: str) -> bytes:
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 255, (480, 640, 3)).astype(np.uint8), (9, 9), 4)
    return cv2.imencode(ext, img)[1].tobytes()


def _time(datas: list[bytes], rounds: int) -> dict[str, float]:
    """Median per-decode microseconds of each way over ``rounds`` interleaved passes."""
    bare: list[float] = []
    checked: list[float] = []
    for _ in range(rounds):
        for d in datas:
            buf = np.frombuffer(d, np.uint8)
            t0 = time.perf_counter()
            cv2.imdecode(buf, cv2.IMREAD_COLOR)
            t1 = time.perf_counter()
            decode_image(d, "bench", rgb=False)
            t2 = time.perf_counter()
            bare.append((t1 - t0) * 1e6)
            checked.append((t2 - t1) * 1e6)
    b, c = statistics.median(bare), statistics.median(checked)
    return {
        "images": len(datas),
        "bare_us": round(b, 1),
        "checked_us": round(c, 1),
        "overhead_us": round(c - b, 1),
        "overhead_pct": round(100 * (c - b) / b, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", help="write the JSON report here too")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    prov = provenance()
    sets = {"generated_640x480_jpeg": [_generated(".jpg")] * 10, "generated_640x480_png": [_generated(".png")] * 10}
    coco = sorted(COCO_VAL.glob("*.jpg"))
    if coco:
        sets["coco_mini_val2017_jpeg"] = [p.read_bytes() for p in coco]
    report = {"provenance": prov, "rounds": args.rounds, "results": {k: _time(v, args.rounds) for k, v in sets.items()}}
    finish(prov)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
