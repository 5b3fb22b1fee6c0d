#!/usr/bin/env bash
# Run the test suite, one pytest process per test file, after the function-length check, ruff
# (lint and format) and mypy.
#
# One process per file keeps native-library state (thread pools, signal handlers, torch settings)
# from leaking from one file into another, and a crash names its file. The whole suite also passes
# in one process (`python -m pytest tests/`): OpenVINO runners share one process-wide Core
# (fasterpose.deploy.runtimes.openvino_core; regression test in test_predict.py).
# Extra arguments go to every pytest call (e.g. -x, -k expr, -m "not slow").
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
passed=0; failed=0; skipped=0; bad_files=()
# No function in src/fasterpose longer than 80 lines (scripts/check_function_length.py).
if ! "$PY" scripts/check_function_length.py; then failed=$((failed + 1)); bad_files+=("scripts/check_function_length.py"); fi
# lint and types beside the tests (pinned versions in the dev extra)
if ! "$PY" -m ruff check src tests scripts; then failed=$((failed + 1)); bad_files+=("ruff check"); fi
if ! "$PY" -m ruff format --check src tests scripts; then failed=$((failed + 1)); bad_files+=("ruff format --check"); fi
if ! "$PY" -m mypy src/fasterpose; then failed=$((failed + 1)); bad_files+=("mypy"); fi
for f in tests/test_*.py; do
  out=$("$PY" -m pytest -q -p no:cacheprovider "$f" "$@" 2>&1); rc=$?
  last=$(printf '%s\n' "$out" | grep -E '(passed|failed|skipped|error|no tests ran)' | tail -n 1)
  echo "$f: ${last:-rc=$rc}"
  p=$(printf '%s' "$last" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+'); passed=$((passed + ${p:-0}))
  s=$(printf '%s' "$last" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+'); skipped=$((skipped + ${s:-0}))
  x=$(printf '%s' "$last" | grep -oE '[0-9]+ (failed|errors?)' | awk '{s+=$1} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
    printf '%s\n' "$out" | tail -n 60
    [ "${x:-0}" -gt 0 ] || x=1
    bad_files+=("$f"); failed=$((failed + x))
  fi
done
echo
[ ${#bad_files[@]} -gt 0 ] && echo "failing files: ${bad_files[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ ${#bad_files[@]} -eq 0 ]
