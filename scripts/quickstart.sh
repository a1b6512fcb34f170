#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, meta-trains
# MetaNAS briefly on the built-in synthetic handwriting dataset
# (configs/synthetic-quick.json: 5-way 1-shot, a small search network, 60
# meta-iterations) into runs/quickstart, then meta-tests it on held-out
# alphabets and prints the accuracy with its 95% interval and the chance level.
# No data files or GPU needed. Environment: BUILD_DIR (default build),
# THREADS (default: all cores), OUT (default runs/quickstart), SKIP_BUILD=1
# (reuse an existing build: skip install-deps.sh and build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/install-deps.sh
  bash scripts/build.sh
fi
BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-runs/quickstart}
THREADS=${THREADS:-$(nproc)}
bin="$BUILD_DIR/bin"

echo
echo "== meta-train: configs/synthetic-quick.json -> $OUT"
"$bin/meta-train" --config configs/synthetic-quick.json --out "$OUT" --overwrite --threads "$THREADS"

echo
echo "== meta-test: held-out (test) alphabets of the synthetic dataset"
"$bin/meta-test" --run "$OUT" --split test --threads "$THREADS"

echo
python_free_summary() {  # the headline numbers of report.json, without jq or python
  local r="$OUT/report.json"
  local acc ci chance
  acc=$(grep -m1 '^  "accuracy"' "$r" | sed -E 's/.*: ([0-9.eE+-]+).*/\1/')
  ci=$(grep -m1 '^  "ci95"' "$r" | sed -E 's/.*: ([0-9.eE+-]+).*/\1/')
  chance=$(grep -m1 '^  "chance"' "$r" | sed -E 's/.*: ([0-9.eE+-]+).*/\1/')
  awk -v a="$acc" -v c="$ci" -v p="$chance" 'BEGIN {
    printf "held-out accuracy %.1f%% +- %.1f%% (95%% CI), chance %.1f%%\n", 100 * a, 100 * c, 100 * p }'
}
echo "== quickstart result ($OUT/report.json)"
python_free_summary
echo "genotype: $(cat "$OUT/genotype.txt")"
echo "files: $OUT/{config.json,train.log,metrics.jsonl,checkpoint.mnck,genotype.*,report.json}"
