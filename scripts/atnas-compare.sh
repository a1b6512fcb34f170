#!/usr/bin/env bash
# AT-NAS vs MetaNAS vs REPTILE 4-conv at one meta-training budget of CPU time
# (docs/results.md, "AT-NAS vs MetaNAS vs REPTILE 4-conv at the same CPU-time
# budget"): each method meta-trains on Omniglot images_background_small1 until
# its process has used CPU_SECONDS of CPU time (then SIGTERM: meta-train saves
# a checkpoint and stops), then meta-tests 20-way 1-shot on the three
# small2-only alphabets (as scripts/omniglot-small-check.sh). CPU time, not
# wall clock, is the budget because the machine is shared: under load, equal
# wall clock gives the methods unequal compute. Every process runs on one
# thread under nice -n 10.
#
# Usage: scripts/atnas-compare.sh
# Environment: ZIPS (data/omniglot), WORK (/tmp/metanas-atnas-compare),
# BUILD_DIR (build), CPU_SECONDS (300), TASKS (test tasks, 20), C (8),
# EVAL_STEPS (15), METHODS ("atnas metanas reptile"), and the AT-NAS meta-test
# search: POP (10), TOPK (5), MUT (5), CROSS (5), GENS (3), FIT_STEPS (5);
# STAGES ("train test": either may be left out), TEST_BUILD_DIR (BUILD_DIR).
# Output: WORK/<method>/train.log, test.log, test.time (user sys wall s).
set -euo pipefail
cd "$(dirname "$0")/.."
ZIPS=${ZIPS:-data/omniglot}
WORK=${WORK:-/tmp/metanas-atnas-compare}
BUILD_DIR=${BUILD_DIR:-build}
CPU_SECONDS=${CPU_SECONDS:-300}
TASKS=${TASKS:-20}
C=${C:-8}
EVAL_STEPS=${EVAL_STEPS:-15}
METHODS=${METHODS:-atnas metanas reptile}
bin="$BUILD_DIR/bin"
export OMP_WAIT_POLICY=passive

data=$(ZIPS=$ZIPS DEST=$WORK/data bash scripts/omniglot-small-data.sh | tail -n 1)
common=(--data "$data" --threads 1 --data.background_dir images_background_small1
  --data.evaluation_dir images_background_small2 --data.scheme "$data/split.json"
  --data.cache_dir "$WORK/cache" --iterations 1000000 --run.val_every 0 --run.log_every 5
  --run.checkpoint_every 5 --overwrite)
narrow=(--model.search.C "$C" --meta.meta_batch_size 5 --eval.arch_steps "$EVAL_STEPS"
  --eval.weight_steps "$EVAL_STEPS")

train_args() {
  case $1 in
    atnas) echo --config configs/atnas-omniglot-20w1s.json "${narrow[@]}" ;;
    metanas) echo --config configs/omniglot-20w1s.json "${narrow[@]}" --meta.warmup_iterations 10 \
      --meta.prune_every 10 ;;
    reptile) echo --config configs/reptile-4conv-omniglot.json ;;
    *) echo "atnas-compare: unknown method '$1'" >&2; exit 2 ;;
  esac
}

# Stops process $1 with SIGTERM once it has used $2 seconds of CPU time.
cpu_budget() {
  local pid=$1 limit=$2 t
  while kill -0 "$pid" 2>/dev/null; do
    t=$(ps -o times= -p "$pid" 2>/dev/null | tr -d ' ' || true)
    if [ -n "$t" ] && [ "$t" -ge "$limit" ]; then kill -TERM "$pid"; return; fi
    sleep 1
  done
}

pids=()
for m in $METHODS; do
  case " ${STAGES:-train test} " in *" train "*) ;; *) break ;; esac
  mkdir -p "$WORK/$m"
  # shellcheck disable=SC2046
  nice -n 10 "$bin/meta-train" $(train_args "$m") --out "$WORK/$m/run" "${common[@]}" \
    >"$WORK/$m/train.log" 2>&1 &
  pid=$!
  cpu_budget "$pid" "$CPU_SECONDS" &
  pids+=("$pid")
done
for p in "${pids[@]}"; do wait "$p" || true; done
wait

for m in $METHODS; do
  case " ${STAGES:-train test} " in *" test "*) ;; *) break ;; esac
  extra=()
  if [ "$m" = atnas ]; then
    extra=(--set atnas.population="${POP:-10}" --set atnas.top_k="${TOPK:-5}" --set atnas.mutants="${MUT:-5}"
      --set atnas.crossovers="${CROSS:-5}" --set atnas.generations="${GENS:-3}"
      --set atnas.fitness_steps="${FIT_STEPS:-5}")
  fi
  /usr/bin/time -f "%U %S %e" -o "$WORK/$m/test.time" nice -n 10 "${TEST_BUILD_DIR:-$BUILD_DIR}/bin/meta-test" --run "$WORK/$m/run" \
    --split test --tasks "$TASKS" --threads 1 "${extra[@]}" >"$WORK/$m/test.log" 2>&1
  echo "$m: $(grep -m1 -i 'accuracy' "$WORK/$m/test.log" || true) (test CPU user sys wall: $(cat "$WORK/$m/test.time"))"
done
