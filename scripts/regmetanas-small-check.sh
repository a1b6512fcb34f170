#!/usr/bin/env bash
# Regularized MetaNAS at a small budget (docs/results.md "Regularized
# MetaNAS"): each regmetanas-*-omniglot-20w1s preset and the MetaNAS baseline
# at the same budget and seeds. DATASET=omniglot (default): meta-train on
# images_background_small1, meta-test 20-way 1-shot on the three small2-only
# alphabets. DATASET=triplemnist: the same method settings with the data and
# episodes of configs/regmetanas-triplemnist-20w3s.json (20-way 3-shot) on a
# TripleMNIST folder made by make-triplemnist (TRIPLEMNIST=DIR; made from
# ../shared/data/mnist when absent). Prints one line per method (accuracy, 95%
# CI, sparse parameters, CPU seconds) from the meta-test reports.
# Environment: ITERATIONS (6; half warm-up), MB (meta-batch, 2), C (8),
# EVAL_STEPS (5 architecture steps per test task), TASKS (20), THREADS (1),
# WORK (/tmp/metanas-regmetanas-small[-triplemnist]), BUILD_DIR (build),
# METHODS (all), DATASET (omniglot), DATA (a prepared Omniglot folder),
# TRIPLEMNIST, PER_CLASS (images per TripleMNIST class when generating, 20).
set -euo pipefail
cd "$(dirname "$0")/.."
ITERATIONS=${ITERATIONS:-6}
DATASET=${DATASET:-omniglot}
BUILD_DIR=${BUILD_DIR:-build}
bin="$BUILD_DIR/bin"
METHODS=${METHODS:-"regmetanas dartsminus dartsminus-beta07 sharpdarts tse pcdarts pdarts"}
half=$((ITERATIONS / 2))
# CPU seconds (user, system) of each program, appended to $1 (0 0 without GNU time).
cpu() {
  if [ -x /usr/bin/time ]; then /usr/bin/time -f "%U %S" -a -o "$1" "${@:2}"; else echo "0 0" >>"$1"; "${@:2}"; fi
}
case "$DATASET" in
  omniglot)
    WORK=${WORK:-/tmp/metanas-regmetanas-small}
    # DATA: a folder omniglot-small-data.sh prepared (for runs side by side).
    data=${DATA:-$(DEST=$WORK/data bash scripts/omniglot-small-data.sh | tail -n 1)}
    data_args=(--data "$data" --data.background_dir images_background_small1
               --data.evaluation_dir images_background_small2 --data.scheme "$data/split.json") ;;
  triplemnist)
    WORK=${WORK:-/tmp/metanas-regmetanas-small-triplemnist}
    data=${TRIPLEMNIST:-$WORK/triplemnist}
    if [ ! -d "$data/test" ]; then
      mnist=../shared/data/mnist
      "$bin/make-triplemnist" --images "$mnist/t10k-images-idx3-ubyte.gz" --labels "$mnist/t10k-labels-idx1-ubyte.gz" \
        --out "$data" --images-per-class "${PER_CLASS:-20}" --threads "${THREADS:-1}" --quiet
    fi
    data_args=(--data "$data") ;;
  *) echo "regmetanas-small-check: unknown DATASET '$DATASET' (omniglot, triplemnist)" >&2; exit 2 ;;
esac
mkdir -p "$WORK"
for m in $METHODS; do
  preset=configs/regmetanas-$m-omniglot-20w1s.json
  [ "$m" = regmetanas ] && preset=configs/regmetanas-omniglot-20w1s.json
  if [ "$DATASET" = triplemnist ]; then
    # The method's keys with the TripleMNIST preset's data and episodes.
    python3 -c "import json,sys; c=json.load(open(sys.argv[1])); t=json.load(open(sys.argv[2])); c['data']=t['data']; c['episodes']=t['episodes']; json.dump(c, open(sys.argv[3], 'w'), indent=2)" \
      "$preset" configs/regmetanas-triplemnist-20w3s.json "$WORK/$m.json"
    preset=$WORK/$m.json
  fi
  rm -f "$WORK/$m-cpu.txt"
  cpu "$WORK/$m-cpu.txt" "$bin/meta-train" --config "$preset" --out "$WORK/$m" --overwrite --quiet \
    "${data_args[@]}" --threads "${THREADS:-1}" --data.cache_dir "$WORK/cache" \
    --iterations "$ITERATIONS" --model.search.C "${C:-8}" --meta.meta_batch_size "${MB:-2}" \
    --meta.warmup_iterations "$half" --meta.prune_every "$half" --eval.arch_steps "${EVAL_STEPS:-5}" \
    --run.val_every 0 --run.log_every 1 --run.checkpoint_every 1000
  cpu "$WORK/$m-cpu.txt" "$bin/meta-test" --run "$WORK/$m" --split test --tasks "${TASKS:-20}" --threads "${THREADS:-1}" --quiet \
    --report "$WORK/$m-test.json" >"$WORK/$m-test.txt" 2>&1
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); s=sum(float(x) for l in open(sys.argv[3]) for x in l.split()[:2]); print('%s: %.2f %% +- %.2f %% (%d tasks), sparse params %d, %.0f CPU s' % (sys.argv[2], 100 * r['accuracy'], 100 * r['ci95'], r['tasks'], r['result']['sparse_params']['mean'], s))" "$WORK/$m-test.json" "$m" "$WORK/$m-cpu.txt"
done
