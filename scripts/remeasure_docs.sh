#!/usr/bin/env bash
# Re-measure every timing and deployment figure that README.md and docs/ quote, into docs/bench/*.json.
#
#   bash scripts/remeasure_docs.sh [CHECKPOINT]     (default: runs/quickstart/last.pth; ~30 min on 2 cores)
#
# Run it on a quiet machine (nothing else on the CPU): every JSON records the machine, the date and the
# load average at its start and end (fasterpose.bench.provenance), so a loaded run shows itself. The
# checkpoint is a quickstart-trained one (`fasterpose quickstart`), for the figures that need trained
# weights (runtime choice, AP of the exports); data.root must hold the SynthPose it was trained on.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
FP=${FASTERPOSE:-.venv/bin/fasterpose}
CKPT=${1:-runs/quickstart/last.pth}
OUT=${OUT:-docs/bench}
[ -f "$CKPT" ] || { echo "no checkpoint at $CKPT: run 'fasterpose quickstart' first" >&2; exit 2; }
mkdir -p "$OUT"
# this CPU's instruction-set class (fasterpose.bench.provenance.cpu_class): the AVX2 figures keep the
# unsuffixed names, another class's go to NAME_CLASS.json beside them (README and docs show both)
CLASS=$("$PY" -c "from fasterpose.bench.provenance import cpu_class; print(cpu_class())")
SFX=$([ "$CLASS" = avx2 ] && echo "" || echo "_$CLASS")
PIN=${PIN:-taskset -c 1}  # per-core figures on one core
step() { echo "== $(date -u +%H:%M:%S) $*" >&2; }

step "runtime choice on trained weights (ONNX Runtime vs OpenVINO, fp32, interleaved)"
"$PY" scripts/bench_runtime_choice.py --checkpoint "$CKPT" --out "$OUT/runtime_choice_CLASS.json" >/dev/null
step "AP of the checkpoint and its exports on SynthPose val"
"$PY" scripts/bench_deploy_ap.py --checkpoint "$CKPT" --config configs/quickstart.yaml \
    --set data.root=data/synthpose --out "$OUT/deploy_ap_quickstart$SFX.json" >/dev/null
step "latency of the five CPU rows against the FLOP floor"
"$FP" bench latency --runs 10 --runtimes onnxruntime,openvino,openvino-bf16,torch \
    --configs configs/{fasterpose_r50,simplebaseline_r50,lpn50,fasterpose_lpn50,litehrnet18}_256x192.yaml \
    --out "$OUT/latency_5rows$SFX.json" >/dev/null
step "latency of FasterPose-R50 vs SimpleBaseline-R50, batch 1 and 8 (the table of a non-AVX2 class)"
"$FP" bench latency --runs 10 --batches 1,8 --runtimes onnxruntime,openvino,openvino-bf16 \
    --configs configs/fasterpose_r50_256x192.yaml configs/simplebaseline_r50_256x192.yaml \
    --out "$OUT/latency_r50$SFX.json" >/dev/null
step "latency of reduced precision (FasterPose-R50)"
"$FP" bench latency --runs 10 --configs configs/fasterpose_r50_256x192.yaml \
    --runtimes openvino,openvino-int8,onnxruntime-int8 --out "$OUT/latency_int8$SFX.json" >/dev/null
step "training throughput FasterPose-R50 vs SimpleBaseline-R50 (NHWC, NCHW)"
"$PY" scripts/bench_train.py --batch 16 --iters 15 --out "$OUT/train_fp32_nhwc_b16$SFX.json" >/dev/null
"$PY" scripts/bench_train.py --batch 16 --iters 15 --contiguous --out "$OUT/train_fp32_nchw_b16$SFX.json" >/dev/null
step "predict: everything but the model"
"$PY" scripts/bench_predict_overhead.py --out "$OUT/predict_overhead$SFX.json" >/dev/null
step "data pipeline, SynthPose generation, OKS-NMS"
$PIN "$PY" scripts/bench_data.py --out "$OUT/data_pipeline$SFX.json" >/dev/null
$PIN "$PY" scripts/bench_synthpose.py --out "$OUT/synthpose_generation$SFX.json" >/dev/null
$PIN "$PY" scripts/bench_eval.py --out "$OUT/eval_nms$SFX.json" >/dev/null
step "done: $OUT"
