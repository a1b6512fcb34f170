#!/usr/bin/env bash
# meta-train --task-streams --graphs on the CPU backend (issue 16): the run's
# checkpoint and metrics are bitwise the task-parallel run's without them
# (streams run in order on the CPU, graphs eagerly), the switches land in
# config.json, and --task-streams without meta.task_parallel is a usage error.
# Usage: task_streams_test.sh BIN_DIR WORK_DIR SOURCE_DIR
set -euo pipefail
bin=$1 work=$2 src=$3
cfg=$src/tests/programs/tiny.json
rm -rf "$work"
mkdir -p "$work"
export OMP_WAIT_POLICY=passive
fail() { echo "FAIL: $*"; exit 1; }
strip() { sed -E 's/"(elapsed_s|it_per_s|seconds)":[^,}]*,?//g' "$1"; }
common=(--config "$cfg" --quiet --threads 1 --iterations 4 --meta.meta_batch_size 3 --set meta.task_parallel=true
        --run.val_every 0)
"$bin/meta-train" "${common[@]}" --out "$work/plain"
"$bin/meta-train" "${common[@]}" --task-streams --graphs --out "$work/streams"
"$bin/checkpoint-diff" "$work/plain/checkpoint.mnck" "$work/streams/checkpoint.mnck" --tensors-only ||
  fail "--task-streams --graphs changed the checkpoint"
diff <(strip "$work/plain/metrics.jsonl") <(strip "$work/streams/metrics.jsonl") || fail "the metrics differ"
grep -q '"task_streams": true' "$work/streams/config.json" || fail "run.task_streams not in config.json"
grep -q '"cuda_graphs": true' "$work/streams/config.json" || fail "run.cuda_graphs not in config.json"
set +e
"$bin/meta-train" --config "$cfg" --quiet --threads 1 --iterations 1 --task-streams --out "$work/bad" 2>"$work/bad.err"
rc=$?
set -e
[ "$rc" = 2 ] || fail "--task-streams without meta.task_parallel exited $rc, expected 2"
grep -q "meta.task_parallel" "$work/bad.err" || fail "the error does not name meta.task_parallel: $(cat "$work/bad.err")"
echo "task streams test passed"
