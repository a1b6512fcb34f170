#!/usr/bin/env bash
# Distributed meta-training (docs/distributed.md) on the CPU backend with
# mpirun -np 2 and -np 3 on tiny synthetic configurations:
#  - REPTILE (MetaNAS) and FOMAML (T-NAS) checkpoints after 4 meta-iterations
#    (with a validation split across the ranks) are bitwise the single-process
#    task-parallel run's, and so are the logged metrics;
#  - a run stopped on 2 ranks resumes on 3 and ends bitwise as the straight run;
#  - the all-reduce mode runs and leaves a usable checkpoint;
#  - a rank killed mid-run makes mpirun fail naming the rank, and the last
#    checkpoint stays loadable; ranks with different configurations are refused.
# Skips (77) when the build has no MPI.
# Usage: distributed_test.sh BIN_DIR WORK_DIR SOURCE_DIR MPIEXEC
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
common=(--config "$cfg" --quiet --threads 1 --iterations 4 --meta.meta_batch_size 3 --set meta.task_parallel=true)
same() {
  "$bin/checkpoint-diff" "$1" "$2" --ignore-meta /program/elapsed_s --ignore-meta /program/saved_at
}
strip() {  # metrics without timing fields and the distributed-only records
  grep -v '"type":"dist"' "$1" | sed -E 's/"(elapsed_s|it_per_s|seconds)":[^,}]*,?//g'
}

for alg in reptile fomaml; do
  extra=()
  [ "$alg" = reptile ] || extra=(--algorithm fomaml --meta.optimizer adam --meta.w_lr 0.001 --meta.a_lr 0.001)
  "$bin/meta-train" "${common[@]}" "${extra[@]}" --out "$work/$alg-1"
  for n in 2 3; do
    "${mpi[@]}" -np $n "$bin/meta-train" "${common[@]}" "${extra[@]}" --out "$work/$alg-$n"
    same "$work/$alg-1/checkpoint.mnck" "$work/$alg-$n/checkpoint.mnck"
    diff <(strip "$work/$alg-1/metrics.jsonl") <(strip "$work/$alg-$n/metrics.jsonl") ||
      { echo "FAIL: $alg metrics differ between 1 and $n ranks"; exit 1; }
    grep -q '"type":"dist"' "$work/$alg-$n/metrics.jsonl"
    # Only rank 0 writes: one event file, one log.
    [ "$(ls "$work/$alg-$n/tb" | wc -l)" = 1 ] || { echo "FAIL: more than one TensorBoard file"; exit 1; }
  done
  # The comparison can fail: the sequential semantics gives other bits.
  "$bin/meta-train" --config "$cfg" --quiet --threads 1 --iterations 4 --meta.meta_batch_size 3 "${extra[@]}" \
    --out "$work/$alg-seq"
  if "$bin/checkpoint-diff" "$work/$alg-1/checkpoint.mnck" "$work/$alg-seq/checkpoint.mnck" --tensors-only >/dev/null; then
    echo "FAIL: $alg task-parallel and sequential checkpoints are identical"; exit 1
  fi
done

# Resume with another number of ranks: 2 iterations on 2 ranks, the rest on 3.
"${mpi[@]}" -np 2 "$bin/meta-train" "${common[@]}" --out "$work/resume" --stop-after 2
"${mpi[@]}" -np 3 "$bin/meta-train" --out "$work/resume" --resume --quiet
same "$work/reptile-1/checkpoint.mnck" "$work/resume/checkpoint.mnck"

# Split meta-test: the same report as one process.
"$bin/meta-test" --run "$work/reptile-1" --tasks 5 --quiet --report "$work/test-1.json" >/dev/null
"${mpi[@]}" -np 2 "$bin/meta-test" --run "$work/reptile-1" --tasks 5 --quiet --report "$work/test-2.json" >/dev/null
diff <(grep -v '"seconds"' "$work/test-1.json" | grep -v '"threads"') \
     <(grep -v '"seconds"' "$work/test-2.json" | grep -v '"threads"') ||
  { echo "FAIL: the split meta-test report differs"; exit 1; }

# The all-reduce mode (not bitwise): it runs and its checkpoint is usable.
"${mpi[@]}" -np 3 "$bin/meta-train" "${common[@]}" --run.dist_reduce allreduce --out "$work/allreduce"
"$bin/meta-test" --run "$work/allreduce" --tasks 2 --quiet >/dev/null

# Mismatched ranks are refused at start (rank 1 has another seed).
rc=0
"${mpi[@]}" -np 1 "$bin/meta-train" "${common[@]}" --out "$work/mismatch" : \
  -np 1 "$bin/meta-train" "${common[@]}" --out "$work/mismatch" --seed 6 >"$work/mismatch.txt" 2>&1 || rc=$?
[ "$rc" != 0 ] || { echo "FAIL: ranks with different configurations were not refused"; exit 1; }
grep -q "of rank 1 differs from rank 0" "$work/mismatch.txt" ||
  { cat "$work/mismatch.txt"; echo "FAIL: the refusal does not name rank 1"; exit 1; }
[ ! -f "$work/mismatch/checkpoint.mnck" ]

# A killed rank: the job fails naming it, the last checkpoint is loadable.
"${mpi[@]}" -np 2 "$bin/meta-train" --config "$cfg" --quiet --threads 1 --iterations 100000 \
  --meta.meta_batch_size 2 --set meta.task_parallel=true --run.checkpoint_every 1 --run.val_every 0 \
  --out "$work/killed" >"$work/killed.txt" 2>&1 &
launcher=$!
victim=""
for _ in $(seq 600); do
  if [ -f "$work/killed/checkpoint.prev.mnck" ]; then
    for p in $(pgrep -P $launcher); do
      if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then victim=$p; fi
    done
    [ -z "$victim" ] || break
  fi
  sleep 0.1
done
[ -n "$victim" ] || { kill $launcher; echo "FAIL: no rank 1 process found"; exit 1; }
kill -9 "$victim"
rc=0
wait $launcher || rc=$?
[ "$rc" != 0 ] || { echo "FAIL: mpirun succeeded after a rank was killed"; exit 1; }
grep -Eiq "rank 1|process rank 1" "$work/killed.txt" ||
  { cat "$work/killed.txt"; echo "FAIL: the failure does not name rank 1"; exit 1; }
"$bin/meta-test" --run "$work/killed" --tasks 2 --quiet >/dev/null
# ... and the run resumes from it on one process.
"$bin/meta-train" --out "$work/killed" --resume --quiet --stop-after 1 >/dev/null
echo "distributed test passed"
