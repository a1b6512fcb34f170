#!/usr/bin/env bash
# AT-NAS vs MetaNAS vs REPTILE 4-conv at one meta-training budget of CPU time
# (docs/results.md, "AT-NAS vs MetaNAS vs REPTILE 4-conv at the same CPU-time
# budget" and "... at 300 CPU-s each"): each method meta-trains on Omniglot
# images_background_small1 until its process has used CPU_SECONDS of CPU time
# (then SIGTERM: meta-train saves a checkpoint and stops), then meta-tests
# 20-way 1-shot on the three small2-only alphabets (as
# scripts/omniglot-small-check.sh). CPU time, not wall clock, is the budget
# because the machine is shared: under load, equal wall clock gives the
# methods unequal compute. Every process runs on one thread under nice -n 10.
#
# Usage: scripts/atnas-compare.sh
# Environment: ZIPS (data/omniglot), WORK (/tmp/metanas-atnas-compare),
# BUILD_DIR (build), CPU_SECONDS (300), TASKS (test tasks, 20), C (8),
# EVAL_STEPS (15), METHODS ("atnas metanas reptile"), PARALLEL (processes at
# once, 2), and the AT-NAS meta-test search: POP (10), TOPK (5), MUT (5),
# CROSS (5), GENS (3), FIT_STEPS (5); STAGES ("train test": any of train,
# test, untrained; untrained = the same meta-train with 0 iterations, i.e. the
# method's initialisation, then the same meta-test), UNTRAINED_TASKS (TASKS),
# TEST_BUILD_DIR (BUILD_DIR).
# The stages run as one queue, PARALLEL at a time: every training first, then
# the tests (each waits for its own method's training), then the untrained
# rows, so that a free slot is never idle while work is left.
# Output: WORK/<method>/train.log, train.time (user sys wall s of meta-train),
# test.log, test.time (user sys wall s), run/report.json; the untrained ones in
# WORK/<method>/untrained/; a summary table on stdout and in WORK/summary.txt.
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
PARALLEL=${PARALLEL:-2}
STAGES=" ${STAGES:-train test} "
bin="$BUILD_DIR/bin"
export OMP_WAIT_POLICY=passive

data=$(ZIPS=$ZIPS DEST=$WORK/data bash scripts/omniglot-small-data.sh | tail -n 1)
common=(--data "$data" --threads 1 --data.background_dir images_background_small1
  --data.evaluation_dir images_background_small2 --data.scheme "$data/split.json"
  --data.cache_dir "$WORK/cache" --run.val_every 0 --run.log_every 5
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

# Meta-trains method $1 until CPU_SECONDS of its CPU time. /usr/bin/time
# records the CPU the meta-train process really used (the stop finishes the
# running iteration, so a little more than the budget).
train_one() {
  local m=$1 tpid pid=""
  mkdir -p "$WORK/$m"
  # shellcheck disable=SC2046
  /usr/bin/time -f "%U %S %e" -o "$WORK/$m/train.time" nice -n 10 "$bin/meta-train" $(train_args "$m") \
    --out "$WORK/$m/run" "${common[@]}" --iterations 1000000 >"$WORK/$m/train.log" 2>&1 &
  tpid=$!
  # nice execs meta-train, so it is /usr/bin/time's only child.
  while [ -z "$pid" ] && kill -0 "$tpid" 2>/dev/null; do
    pid=$(ps -o pid= --ppid "$tpid" | tr -d ' ' || true)
    sleep 0.2
  done
  [ -n "$pid" ] && cpu_budget "$pid" "$CPU_SECONDS"
  wait "$tpid" || true
}

# Meta-tests the run in $2 (method $1) into $2/../test.log and test.time.
test_one() {
  local m=$1 run=$2 tasks=$3 extra=()
  if [ "$m" = atnas ]; then
    extra=(--set atnas.population="${POP:-10}" --set atnas.top_k="${TOPK:-5}" --set atnas.mutants="${MUT:-5}"
      --set atnas.crossovers="${CROSS:-5}" --set atnas.generations="${GENS:-3}"
      --set atnas.fitness_steps="${FIT_STEPS:-5}")
  fi
  /usr/bin/time -f "%U %S %e" -o "$run/../test.time" nice -n 10 "${TEST_BUILD_DIR:-$BUILD_DIR}/bin/meta-test" \
    --run "$run" --split test --tasks "$tasks" --threads 1 "${extra[@]}" >"$run/../test.log" 2>&1
}

# The methods that train in this invocation: their tests wait for train.done.
trains=""
[[ $STAGES == *" train "* ]] && trains=" $METHODS "

run_job() {
  local stage=$1 m=$2
  case $stage in
    train) rm -f "$WORK/$m/train.done"; train_one "$m"; touch "$WORK/$m/train.done" ;;
    test)
      if [[ $trains == *" $m "* ]]; then
        while [ ! -e "$WORK/$m/train.done" ]; do sleep 5; done
      fi
      test_one "$m" "$WORK/$m/run" "$TASKS" ;;
    untrained)
      mkdir -p "$WORK/$m/untrained"
      # shellcheck disable=SC2046
      nice -n 10 "$bin/meta-train" $(train_args "$m") --out "$WORK/$m/untrained/run" "${common[@]}" \
        --iterations 0 >"$WORK/$m/untrained/train.log" 2>&1
      test_one "$m" "$WORK/$m/untrained/run" "${UNTRAINED_TASKS:-$TASKS}" ;;
  esac
}

running=0
for stage in train test untrained; do
  [[ $STAGES == *" $stage "* ]] || continue
  for m in $METHODS; do
    train_args "$m" >/dev/null
    if [ "$running" -ge "$PARALLEL" ]; then wait -n || true; running=$((running - 1)); fi
    run_job "$stage" "$m" &
    running=$((running + 1))
  done
done
wait

# One line per run: meta-iterations, training CPU, accuracy +- 95% CI, test
# CPU, and for AT-NAS the search figures of report.json.
python3 - "$WORK" $METHODS <<'EOF' | tee "$WORK/summary.txt"
import json, os, sys
work, methods = sys.argv[1], sys.argv[2:]
def times(p):
    try:
        u, s, e = open(p).read().split()[-3:]
        return float(u) + float(s), float(e)
    except (OSError, ValueError):
        return None
for m in methods:
    for label, d in ((m, os.path.join(work, m)), (m + " untrained", os.path.join(work, m, "untrained"))):
        rep = os.path.join(d, "run", "report.json")
        if not os.path.exists(rep):
            continue
        r = json.load(open(rep))
        res = r.get("result", r)
        line = f"{label}: it {r.get('iteration')} | acc {100 * res['mean_accuracy']:.2f}% +- {100 * res['ci95']:.2f}%"
        tt, ts = times(os.path.join(d, "train.time")), times(os.path.join(d, "test.time"))
        if tt:
            line += f" | train CPU {tt[0]:.1f} s, wall {tt[1]:.0f} s"
        if ts:
            line += f" | test CPU {ts[0]:.1f} s, wall {ts[1]:.0f} s"
        a = res.get("atnas")
        if a:
            cpu = [t["search_cpu_seconds"] for t in a["tasks"]]
            wall = [t["search_seconds"] for t in a["tasks"]]
            par = [t["params"] for t in a["tasks"]]
            line += (f" | search/task CPU {a['mean_search_cpu_seconds']:.2f} s ({min(cpu):.2f}-{max(cpu):.2f}),"
                     f" wall {a['mean_search_seconds']:.1f} s ({min(wall):.1f}-{max(wall):.1f})"
                     f" | {a['distinct_genotypes']} distinct genotypes / {len(cpu)} tasks,"
                     f" mean gene distance {a['mean_gene_distance']:.2f}"
                     f" | params {min(par)}-{max(par)} (mean {sum(par) / len(par):.0f})"
                     f" | evaluations/task {sum(t['evaluations'] for t in a['tasks']) / len(cpu):.1f}")
        print(line)
EOF
