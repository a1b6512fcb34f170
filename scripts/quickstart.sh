#!/usr/bin/env bash
# The README's main command: installs dependencies, builds, then shows
# meta-learning on real handwriting. By default (DATA=omniglot) it meta-trains
# MetaNAS (configs/quickstart-omniglot.json: 5-way 1-shot, a small search
# network, ITERATIONS meta-iterations) on the Omniglot subset
# images_background_small1 shipped in data/omniglot (5 alphabets, x4
# rotations), meta-tests it on the three alphabets of images_background_small2
# that small1 lacks (every test class is new), and meta-tests the same network
# untrained, with the same test tasks and adaptation, as the baseline.
# DATA=synthetic does the same on the built-in synthetic handwriting
# (configs/synthetic-quick.json; no files needed).
#
# Environment: DATA (omniglot | synthetic), BUILD_DIR (default build),
# THREADS (default: all cores), OUT (default runs/quickstart; the baseline
# goes to OUT-untrained), SKIP_BUILD=1 (reuse an existing build: skip
# install-deps.sh and build.sh), ITERATIONS and TASKS (override the
# configuration's meta-iterations and test tasks; the tests use tiny values),
# ZIPS (folder holding the two Omniglot zips; default data/omniglot),
# OMP_WAIT_POLICY (default passive).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/install-deps.sh
  bash scripts/build.sh
fi
DATA=${DATA:-omniglot}
BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-runs/quickstart}
BASE=$OUT-untrained
THREADS=${THREADS:-$(nproc)}
bin="$BUILD_DIR/bin"
# Idle OpenMP threads sleep instead of spinning: on a machine whose cores are
# shared, spinning threads of a 2-thread run made iterations up to 20x slower
# (docs/results.md). Set OMP_WAIT_POLICY=active for a dedicated machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

train_args=(--out "$OUT" --overwrite --threads "$THREADS")
case "$DATA" in
  omniglot)
    config=configs/quickstart-omniglot.json
    echo
    echo "== data: the Omniglot subsets shipped in ${ZIPS:-data/omniglot} (checked, unpacked once)"
    root=$(bash scripts/omniglot-small-data.sh | tail -n 1)
    train_args+=(--data "$root" --data.scheme "$root/split.json")
    what="Omniglot: 5-way 1-shot on Japanese_(katakana), Sanskrit, Tagalog (alphabets never seen in training)"
    ;;
  synthetic)
    config=configs/synthetic-quick.json
    what="synthetic handwriting: 5-way 1-shot on the held-out test alphabets"
    ;;
  *)
    echo "quickstart: error: DATA must be omniglot or synthetic, not '$DATA'" >&2
    exit 2
    ;;
esac
[ -z "${ITERATIONS:-}" ] || train_args+=(--iterations "$ITERATIONS")
test_args=(--split test --threads "$THREADS")
[ -z "${TASKS:-}" ] || test_args+=(--tasks "$TASKS")

start=$SECONDS
echo
echo "== meta-train: $config -> $OUT"
"$bin/meta-train" --config "$config" "${train_args[@]}"
trained=$SECONDS

echo
echo "== meta-test: $what"
"$bin/meta-test" --run "$OUT" "${test_args[@]}"

echo
echo "== baseline: the same network untrained (iteration 0), same test tasks and adaptation -> $BASE"
# Warm-up 0, so that its test tasks adapt the architecture too, as the trained run's do.
"$bin/meta-train" --config "$OUT/config.json" --out "$BASE" --overwrite --quiet \
  --iterations 0 --meta.warmup_iterations 0
"$bin/meta-test" --run "$BASE" "${test_args[@]}" --quiet
# One self-contained HTML page for the run (curves, alpha heatmaps, genotype,
# test histograms), with the untrained baseline's curves overlaid.
"$bin/meta-report" "$OUT" "$BASE" --out "$OUT/report.html" > /dev/null
end=$SECONDS

summary() {  # REPORT -> "accuracy% +- ci% (95% CI over N tasks)", without jq or python
  local r=$1 acc ci tasks
  acc=$(grep -m1 '^  "accuracy"' "$r" | sed -E 's/.*: ([0-9.eE+-]+).*/\1/')
  ci=$(grep -m1 '^  "ci95"' "$r" | sed -E 's/.*: ([0-9.eE+-]+).*/\1/')
  tasks=$(grep -m1 '^  "tasks"' "$r" | sed -E 's/.*: ([0-9]+).*/\1/')
  awk -v a="$acc" -v c="$ci" -v n="$tasks" 'BEGIN {
    printf "%.1f%% +- %.1f%% (95%% CI over %d tasks)", 100 * a, 100 * c, n }'
}
chance=$(grep -m1 '^  "chance"' "$OUT/report.json" | sed -E 's/.*: ([0-9.eE+-]+).*/\1/')
iters=$(grep -m1 '^  "iteration"' "$OUT/report.json" | sed -E 's/.*: ([0-9]+).*/\1/')
echo
echo "== quickstart result: $what"
echo "meta-trained ($iters iterations): $(summary "$OUT/report.json")"
echo "untrained, same adaptation:      $(summary "$BASE/report.json")"
awk -v p="$chance" 'BEGIN { printf "chance:                          %.1f%%\n", 100 * p }'
echo "time: meta-train $((trained - start)) s, meta-test + baseline $((end - trained)) s"
echo "genotype:         $(cat "$OUT/genotype.txt")"
if [ -f "$OUT/genotype.svg" ]; then
  echo "genotype picture: $OUT/genotype.svg (Graphviz source $OUT/genotype.dot)"
else
  echo "genotype picture: $OUT/genotype.dot (Graphviz source; install graphviz for genotype.svg)"
fi
echo "HTML report:      $OUT/report.html (open in a browser; no network needed)"
echo "TensorBoard:      tensorboard --logdir $OUT/tb"
echo "test report:      $OUT/report.json (baseline: $BASE/report.json)"
echo "metrics:          $OUT/metrics.jsonl"
echo "log:              $OUT/train.log"
echo "checkpoints:      $OUT/checkpoint.mnck, $OUT/checkpoint.prev.mnck"
echo "configuration:    $OUT/config.json"
