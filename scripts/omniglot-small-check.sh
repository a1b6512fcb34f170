#!/usr/bin/env bash
# The Omniglot small-subset check (docs/results.md): meta-train MetaNAS on
# images_background_small1 (5 alphabets, 136 characters, x4 rotations) and
# meta-test 20-way 1-shot on the three alphabets of images_background_small2
# that small1 lacks (Japanese_(katakana), Sanskrit, Tagalog: 106 characters).
# It is a short run on a reduced network (settings below), far from the
# 30,000-iteration preset; it checks that the whole pipeline learns on real
# data, not what MetaNAS reaches.
#
# Usage: scripts/omniglot-small-check.sh [extra meta-train flags...]
# Environment: ZIPS (folder holding images_background_small{1,2}.zip;
# default data/omniglot, the copies shipped with the repository), WORK (default /tmp/metanas-omniglot-small),
# BUILD_DIR (default build), THREADS (default all cores), PRESET (configs/omniglot-20w1s.json),
# ITERATIONS (120), C (8), EVAL_STEPS (15),
# TASKS (test tasks, 100), BASELINE (1: also meta-test the untrained network on the
# same tasks, for comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
ZIPS=${ZIPS:-data/omniglot}
WORK=${WORK:-/tmp/metanas-omniglot-small}
BUILD_DIR=${BUILD_DIR:-build}
THREADS=${THREADS:-$(nproc)}
ITERATIONS=${ITERATIONS:-120}
TASKS=${TASKS:-100}
bin="$BUILD_DIR/bin"

# Checks the zips' checksums, unpacks them once and writes the split file
# (train = small1; test = the small2 alphabets small1 lacks).
data=$(ZIPS=$ZIPS DEST=$WORK/data bash scripts/omniglot-small-data.sh | tail -n 1)

# The MetaNAS Omniglot 20-way 1-shot preset, shortened: a narrower network
# (C=8 by default; env C), meta-batch 5, ITERATIONS meta-iterations (half warm-up), test tasks
# adapted for EVAL_STEPS + EVAL_STEPS steps instead of 50 + 50. Another preset (env PRESET, e.g.
# configs/reptile-4conv-omniglot.json) runs with its own settings, only ITERATIONS changed.
PRESET=${PRESET:-configs/omniglot-20w1s.json}
half=$((ITERATIONS / 2))
shorten=()
if [ "$PRESET" = configs/omniglot-20w1s.json ]; then
  shorten=(--model.search.C "${C:-8}" --meta.meta_batch_size 5
    --meta.warmup_iterations "$half" --meta.prune_every "$half"
    --eval.arch_steps "${EVAL_STEPS:-15}" --eval.weight_steps "${EVAL_STEPS:-15}")
fi
"$bin/meta-train" --config "$PRESET" --out "$WORK/run" --overwrite \
  --data "$data" --threads "$THREADS" \
  --data.background_dir images_background_small1 --data.evaluation_dir images_background_small2 \
  --data.scheme "$data/split.json" --data.cache_dir "$WORK/cache" \
  --iterations "$ITERATIONS" "${shorten[@]}" \
  --run.val_every 0 --run.log_every 10 --run.checkpoint_every 50 "$@"
"$bin/meta-test" --run "$WORK/run" --split test --tasks "$TASKS" --threads "$THREADS"

if [ "${BASELINE:-0}" = 1 ]; then
  # The same network and test procedure without meta-training (iteration 0;
  # warm-up 0 so that test tasks adapt the architecture too, as above).
  "$bin/meta-train" --config "$WORK/run/config.json" --out "$WORK/untrained" --overwrite --quiet \
    --iterations 0 --meta.warmup_iterations 0
  "$bin/meta-test" --run "$WORK/untrained" --split test --tasks "$TASKS" --threads "$THREADS" --quiet
fi
