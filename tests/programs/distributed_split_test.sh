#!/usr/bin/env bash
# The rest of distributed meta-training and meta-testing split across ranks
# (docs/distributed.md) on the CPU backend, each compared bitwise with the
# single process (task-parallel semantics, tiny synthetic configurations):
#  - MAML++ meta-training (LSLR, MSL, second order) on 2 and 3 ranks: the
#    same checkpoint (per-step rates included);
#  - meta-test --runs (one-shot runs split across ranks) on 2 and 3 ranks;
#  - meta-test eval.mode retrain (T-NAS decode and retrain, the tasks split)
#    on 2 and 3 ranks: the same report;
#  - AT-NAS meta-test (a seeded subnet search per task, the tasks split) on 2
#    and 3 ranks: the same report; AT-NAS meta-training refuses the mode.
# Skips (77) when the build has no MPI.
# Usage: distributed_split_test.sh BIN_DIR WORK_DIR SOURCE_DIR MPIEXEC
set -euo pipefail
bin=$1 work=$2 src=$3 mpiexec=${4:-}
if [ -z "$mpiexec" ] || [ ! -x "$mpiexec" ]; then
  echo "no MPI in this build: skipped"; exit 77
fi
cfg=$src/tests/programs/tiny.json
rm -rf "$work"
mkdir -p "$work"
export OMP_WAIT_POLICY=passive
mpi=("$mpiexec" --oversubscribe)
[ "$(id -u)" -ne 0 ] || mpi+=(--allow-run-as-root)
fail() { echo "FAIL: $*"; exit 1; }
same() {
  "$bin/checkpoint-diff" "$1" "$2" --ignore-meta /program/elapsed_s --ignore-meta /program/saved_at
}
report() {  # a report without timing and thread fields
  grep -v -E '"(seconds|threads|search_seconds|mean_search_seconds|search_seconds_per_task|search_cpu_seconds|mean_search_cpu_seconds|search_cpu_seconds_per_task)"' "$1"
}

# ---- MAML++ meta-training ----
pp=(--config "$cfg" --quiet --threads 1 --iterations 3 --meta.meta_batch_size 3 --meta.warmup_iterations 1
  --algorithm fomaml --meta.optimizer adam --meta.w_lr 0.001 --meta.a_lr 0.001 --set task.optimizer=sgd
  --set task.drop_path_prob=0 --set mamlpp.lslr=true --set mamlpp.msl=true --set mamlpp.second_order=true
  --set mamlpp.epoch_iterations=2 --set run.val_every=2)
"$bin/meta-train" "${pp[@]}" --set meta.task_parallel=true --out "$work/pp-1"
for n in 2 3; do
  "${mpi[@]}" -np $n "$bin/meta-train" "${pp[@]}" --set meta.task_parallel=true --out "$work/pp-$n"
  same "$work/pp-1/checkpoint.mnck" "$work/pp-$n/checkpoint.mnck" || fail "MAML++ on $n ranks differs"
done
# The comparison can fail: the sequential MAML++ step gives other bits.
"$bin/meta-train" "${pp[@]}" --out "$work/pp-seq"
if "$bin/checkpoint-diff" "$work/pp-1/checkpoint.mnck" "$work/pp-seq/checkpoint.mnck" --tensors-only >/dev/null; then
  fail "task-parallel and sequential MAML++ checkpoints are identical"
fi
# ... but with one task per meta-batch and no random draw in the inner loop
# (whole support set, no drop-path) the two semantics coincide: the
# task-parallel step must then give the sequential step's bits (weights,
# alphas, per-step rates and their Adam state), so a contribution it lost
# or mis-scaled would show here.
one=(--meta.meta_batch_size 1 --set task.batch_size=0)
"$bin/meta-train" "${pp[@]}" "${one[@]}" --set meta.task_parallel=true --out "$work/pp1-tp"
"$bin/meta-train" "${pp[@]}" "${one[@]}" --out "$work/pp1-seq"
"$bin/checkpoint-diff" "$work/pp1-tp/checkpoint.mnck" "$work/pp1-seq/checkpoint.mnck" --tensors-only ||
  fail "one-task task-parallel MAML++ differs from the sequential step"

# ---- a task-parallel MetaNAS checkpoint to meta-test ----
"$bin/meta-train" --config "$cfg" --quiet --threads 1 --iterations 3 --meta.warmup_iterations 1 \
  --set meta.task_parallel=true --out "$work/m"

# ---- meta-test --runs: 4 one-shot runs of 3 classes (16x16 grey PNGs) ----
python3 - "$work/runs" <<'PY'
import os, random, struct, sys, zlib
root = sys.argv[1]
rnd = random.Random(3)
def png(path, pix):
    raw = b"".join(b"\0" + bytes(row) for row in pix)
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for r in range(1, 5):
    run = "run%02d" % r
    os.makedirs(os.path.join(root, run, "training"))
    os.makedirs(os.path.join(root, run, "test"))
    protos = [[[rnd.randrange(256) for _ in range(16)] for _ in range(16)] for _ in range(3)]
    lines = []
    for k in range(3):
        png(os.path.join(root, run, "training", "class%02d.png" % (k + 1)), protos[k])
    for q, k in enumerate([2, 0, 1]):
        noisy = [[min(255, max(0, v + rnd.randrange(-40, 41))) for v in row] for row in protos[k]]
        png(os.path.join(root, run, "test", "item%02d.png" % (q + 1)), noisy)
        lines.append("%s/test/item%02d.png %s/training/class%02d.png" % (run, q + 1, run, k + 1))
    with open(os.path.join(root, run, "class_labels.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
PY
"$bin/meta-test" --run "$work/m" --runs "$work/runs" --quiet --report "$work/runs-1.json" >/dev/null
for n in 2 3; do
  "${mpi[@]}" -np $n "$bin/meta-test" --run "$work/m" --runs "$work/runs" --quiet --report "$work/runs-$n.json" >/dev/null
  diff <(report "$work/runs-1.json") <(report "$work/runs-$n.json") || fail "meta-test --runs on $n ranks differs"
done
grep -q '"run04"' "$work/runs-1.json" || fail "the runs report lacks run04"

# ---- meta-test eval.mode retrain (T-NAS), the tasks split ----
rt=(--run "$work/m" --tasks 4 --quiet --set eval.mode=retrain --set eval.retrain.meta_iterations=2
  --set eval.retrain.meta_batch_size=2 --set eval.retrain.steps=2 --set eval.retrain.task_steps=2
  --set eval.retrain.cache=1)
"$bin/meta-test" "${rt[@]}" --report "$work/rt-1.json" >/dev/null
for n in 2 3; do
  "${mpi[@]}" -np $n "$bin/meta-test" "${rt[@]}" --report "$work/rt-$n.json" >/dev/null
  diff <(report "$work/rt-1.json") <(report "$work/rt-$n.json") || fail "the retrain report on $n ranks differs"
done
grep -q '"mode": "retrain"' "$work/rt-1.json" || fail "not a retrain report"
# ---- AT-NAS meta-test: one seeded search per task, the tasks split ----
at=(--config "$cfg" --quiet --threads 1 --iterations 2 --algorithm atnas --set task.optimizer=sgd
  --set task.normalizer=softmax --set atnas.population=3 --set atnas.top_k=2 --set atnas.mutants=2
  --set atnas.crossovers=1 --set atnas.generations=1 --set atnas.fitness_steps=1 --set run.val_every=0)
"$bin/meta-train" "${at[@]}" --out "$work/at"
rc=0
"$bin/meta-train" "${at[@]}" --out "$work/at-tp" --set meta.task_parallel=true >"$work/at-tp.txt" 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "for atnas meta-testing only" "$work/at-tp.txt" || { cat "$work/at-tp.txt"; fail "atnas meta-training accepted meta.task_parallel"; }
ta=(--run "$work/at" --tasks 5 --quiet --set meta.task_parallel=true)
"$bin/meta-test" "${ta[@]}" --report "$work/at-1.json" >/dev/null
for n in 2 3; do
  "${mpi[@]}" -np $n "$bin/meta-test" "${ta[@]}" --report "$work/at-$n.json" >/dev/null
  diff <(report "$work/at-1.json") <(report "$work/at-$n.json") || fail "the AT-NAS report on $n ranks differs"
done
grep -q '"encoding"' "$work/at-1.json" || fail "not an AT-NAS report"
echo "distributed split test passed"
