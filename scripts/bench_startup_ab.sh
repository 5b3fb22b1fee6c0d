#!/usr/bin/env bash
# Start-up before/after: bench_startup.py on an older checkout's src (OLD_SRC) and this one, interleaved.
# usage: [ONNX=model.onnx IMAGE=img.jpg] bash scripts/bench_startup_ab.sh OLD_SRC [NEW_SRC] [OUT.json]
# (the ONNX predict case runs on the new code only: an older checkout may not read a newer model file)
cd "$(dirname "$0")/.."
OLD=${1:?old src folder}; NEW=${2:-$PWD/src}; OUT=${3:-docs/bench/startup_before_after.json}; mkdir -p /tmp/startup
for r in 1 2 3; do
  PYTHONPATH=$OLD .venv/bin/python scripts/bench_startup.py --repeats 2 --out /tmp/startup/before_$r.json > /dev/null
  PYTHONPATH=$NEW .venv/bin/python scripts/bench_startup.py --repeats 2 ${ONNX:+--onnx $ONNX --image $IMAGE} --out /tmp/startup/after_$r.json > /dev/null
done
OUT=$OUT .venv/bin/python - <<'PY'
import json, glob, os, statistics, time
out = {"command": "bash scripts/bench_startup_ab.sh OLD_SRC: python scripts/bench_startup.py --repeats 2, before (c362eea) and after interleaved, 3 rounds",
       "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": "2-core AMD EPYC family 25 (Zen 3), no GPU"}
for tag in ("before", "after"):
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"/tmp/startup/{tag}_*.json"))]
    out[tag] = {case: {"wall_s_median": statistics.median(w for r in runs for w in r["cases"][case]["wall_s_all"]),
                       "imports_torch": runs[-1]["cases"][case]["imports_torch"],
                       "returncode": runs[-1]["cases"][case]["returncode"]}
                for case in runs[0]["cases"]}
    out[tag]["python_startup_s"] = statistics.median(r["python_startup_s"] for r in runs)
print(json.dumps(out, indent=2))
json.dump(out, open(os.environ["OUT"], "w"), indent=2)
PY
