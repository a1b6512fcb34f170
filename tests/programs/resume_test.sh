#!/usr/bin/env bash
# Resume test: meta-train 2N iterations straight, and N iterations + --resume
# for the rest, on a tiny synthetic configuration; the final checkpoints
# (parameters, optimizer states, RNG and sampler states) must be bitwise
# identical, and so must the logged training metrics. Run for MetaNAS
# (reptile + DARTS task optimizer) and T-NAS (fomaml + SGD inner loop).
# Usage: resume_test.sh BIN_DIR WORK_DIR SOURCE_DIR
set -euo pipefail
bin=$1 work=$2 src=$3
cfg=$src/tests/programs/tiny.json
rm -rf "$work"
mkdir -p "$work"

# metrics.jsonl without the timing fields (which differ between runs).
strip_timing() {
  sed -E 's/"(elapsed_s|it_per_s|seconds)":[^,}]*,?//g' "$1"
}

for alg in reptile fomaml; do
  extra=()
  if [ "$alg" = fomaml ]; then
    extra=(--algorithm fomaml --task.optimizer sgd --meta.optimizer adam --meta.w_lr 0.001 --meta.a_lr 0.001)
  fi
  "$bin/meta-train" --config "$cfg" "${extra[@]}" --quiet --out "$work/$alg-straight"
  "$bin/meta-train" --config "$cfg" "${extra[@]}" --quiet --out "$work/$alg-split" --stop-after 3
  test -f "$work/$alg-split/checkpoint.mnck"
  # An interrupted run must refuse a fresh start in the same folder.
  if "$bin/meta-train" --config "$cfg" --quiet --out "$work/$alg-split" 2>"$work/err.txt"; then
    echo "FAIL: meta-train reused a run folder without --resume or --overwrite"; exit 1
  fi
  grep -q -- "--resume" "$work/err.txt"
  "$bin/meta-train" --out "$work/$alg-split" --resume --quiet
  "$bin/checkpoint-diff" "$work/$alg-straight/checkpoint.mnck" "$work/$alg-split/checkpoint.mnck" \
    --ignore-meta /program/elapsed_s --ignore-meta /program/saved_at
  if ! diff <(strip_timing "$work/$alg-straight/metrics.jsonl") <(strip_timing "$work/$alg-split/metrics.jsonl"); then
    echo "FAIL: $alg metrics differ between the straight and the resumed run"; exit 1
  fi
  # The diff tool must notice a difference (a test that cannot fail proves nothing).
  if "$bin/checkpoint-diff" "$work/$alg-straight/checkpoint.mnck" "$work/$alg-split/checkpoint.prev.mnck" \
       --tensors-only >/dev/null; then
    echo "FAIL: checkpoint-diff found no difference between iterations 6 and 4"; exit 1
  fi
  "$bin/meta-test" --run "$work/$alg-split" --quiet
  # The model is fixed by the checkpoint: another number of ways is a usage error.
  rc=0
  "$bin/meta-test" --run "$work/$alg-split" --ways 4 --quiet 2>"$work/err.txt" || rc=$?
  [ "$rc" = 2 ] && grep -q "different model" "$work/err.txt" || { echo "FAIL: meta-test --ways 4 gave $rc"; exit 1; }
  grep -q '"accuracy"' "$work/$alg-split/report.json"
done
echo "resume test passed"
