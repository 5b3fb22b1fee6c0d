"""What the damaged-image check costs per decode: ``fasterpose.data.image_io.decode_image`` (OpenCV's
decode with libjpeg's / libpng's ``stderr`` lines caught, see ``_decode_captured``) against a bare
``cv2.imdecode``, interleaved, one OpenCV thread, on the same encoded bytes:

    python scripts/bench_image_integrity.py --out docs/bench/image_integrity.json

Images: the real COCO val images of ``../shared/data/coco_mini`` when present, generated 640x480 JPEG
and PNG, and a 16x16 JPEG whose decode is short enough to show the check's own cost. Reported: median
microseconds per decode of each, and their difference.

``--threads N`` also times decodes in N threads at once (eval's and predict's reading threads), as
images per second over interleaved rounds: bare ``cv2.imdecode``, ``decode_image`` and, with
``--baseline REV``, ``decode_image`` as it was at git revision REV (one decode at a time before
concurrent capture); each also in one thread:

    python scripts/bench_image_integrity.py --threads 2 --baseline 4b73199 --out docs/bench/image_decode_threads.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


def _rate(decode: Callable[[bytes], object], datas: list[bytes], threads: int) -> float:
    """Images per second: every image of ``datas`` decoded once, spread over ``threads`` threads."""
    t0 = time.perf_counter()
    if threads == 1:
        for d in datas:
            decode(d)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(decode, datas))
    return len(datas) / (time.perf_counter() - t0)


def _threaded(datas: list[bytes], threads: int, rounds: int, baseline: str | None) -> dict[str, object]:
    """Median images/s of each way in 1 and ``threads`` threads over ``rounds`` interleaved rounds."""
    ways: dict[str, Callable[[bytes], object]] = {
        "bare cv2.imdecode": lambda d: cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR),
        "decode_image": lambda d: decode_image(d, "bench", rgb=False),
    }
    if baseline:
        from fasterpose.bench.baseline import import_baseline

        old = import_baseline(baseline, "data.image_io")
        ways[f"decode_image at {baseline}"] = lambda d: old.decode_image(d, "bench", rgb=False)
    rates: dict[str, list[float]] = {f"{w}, {n} thread(s)": [] for w in ways for n in sorted({1, threads})}
    for _ in range(rounds):
        for w, fn in ways.items():
            for n in sorted({1, threads}):
                rates[f"{w}, {n} thread(s)"].append(_rate(fn, datas, n))
    med = {k: round(statistics.median(v), 1) for k, v in rates.items()}
    out: dict[str, object] = {"images_per_round": len(datas), "threads": threads, "images_per_second": med}
    if threads > 1:
        out["speedup_over_one_thread"] = {
            w: round(med[f"{w}, {threads} thread(s)"] / med[f"{w}, 1 thread(s)"], 2) for w in ways
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", help="write the JSON report here too")
    parser.add_argument("--threads", type=int, default=0, help="also time decodes in this many threads (0: skip)")
    parser.add_argument("--baseline", default=None, help="git revision whose decode_image is timed too (--threads)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    prov = provenance()
    tiny = cv2.imencode(".jpg", np.full((16, 16, 3), 100, np.uint8))[1].tobytes()  # the capture's own cost
    sets = {
        "generated_16x16_jpeg": [tiny] * 200,
        "generated_640x480_jpeg": [_generated(".jpg")] * 10,
        "generated_640x480_png": [_generated(".png")] * 10,
    }
    coco = sorted(COCO_VAL.glob("*.jpg"))
    if coco:
        sets["coco_mini_val2017_jpeg"] = [p.read_bytes() for p in coco]
    report: dict[str, object] = {"provenance": prov, "rounds": args.rounds}
    if args.threads:
        jpegs = sets.get("coco_mini_val2017_jpeg", sets["generated_640x480_jpeg"])
        report["threaded"] = _threaded(jpegs * 4, args.threads, args.rounds, args.baseline)
    report["results"] = {k: _time(v, args.rounds) for k, v in sets.items()}
    finish(prov)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
