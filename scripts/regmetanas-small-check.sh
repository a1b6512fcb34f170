#!/usr/bin/env bash
# Regularized MetaNAS on the Omniglot small subset (docs/results.md
# "Regularized MetaNAS"): each regmetanas-*-omniglot-20w1s preset and the
# MetaNAS baseline at the same tiny budget: meta-train on
# images_background_small1, meta-test 20-way 1-shot on the three
# small2-only alphabets. Prints one line per method (accuracy, 95% CI,
# sparse parameters) from the meta-test reports.
# Environment: ITERATIONS (6; half warm-up), MB (meta-batch, 2), C (8),
# EVAL_STEPS (5 architecture steps per test task), TASKS (20), THREADS (1),
# WORK (/tmp/metanas-regmetanas-small), BUILD_DIR (build), METHODS (all).
set -euo pipefail
cd "$(dirname "$0")/.."
ITERATIONS=${ITERATIONS:-6}
WORK=${WORK:-/tmp/metanas-regmetanas-small}
BUILD_DIR=${BUILD_DIR:-build}
bin="$BUILD_DIR/bin"
METHODS=${METHODS:-"regmetanas dartsminus dartsminus-beta07 sharpdarts tse pcdarts pdarts"}
data=$(DEST=$WORK/data bash scripts/omniglot-small-data.sh | tail -n 1)
half=$((ITERATIONS / 2))
for m in $METHODS; do
  preset=configs/regmetanas-$m-omniglot-20w1s.json
  [ "$m" = regmetanas ] && preset=configs/regmetanas-omniglot-20w1s.json
  "$bin/meta-train" --config "$preset" --out "$WORK/$m" --overwrite --quiet \
    --data "$data" --threads "${THREADS:-1}" \
    --data.background_dir images_background_small1 --data.evaluation_dir images_background_small2 \
    --data.scheme "$data/split.json" --data.cache_dir "$WORK/cache" \
    --iterations "$ITERATIONS" --model.search.C "${C:-8}" --meta.meta_batch_size "${MB:-2}" \
    --meta.warmup_iterations "$half" --meta.prune_every "$half" --eval.arch_steps "${EVAL_STEPS:-5}" \
    --run.val_every 0 --run.log_every 1 --run.checkpoint_every 1000
  "$bin/meta-test" --run "$WORK/$m" --split test --tasks "${TASKS:-20}" --threads "${THREADS:-1}" --quiet \
    --report "$WORK/$m-test.json" >"$WORK/$m-test.txt" 2>&1
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('%s: %.2f %% +- %.2f %% (%d tasks), sparse params %d' % (sys.argv[2], 100 * r['accuracy'], 100 * r['ci95'], r['tasks'], r['result']['sparse_params']['mean']))" "$WORK/$m-test.json" "$m"
done
