#!/usr/bin/env bash
# Fault behaviour of distributed meta-training (docs/distributed.md, "Checks
# and failures") on the CPU backend:
#  - a rank that throws an error mid-run (the test-only fault injection
#    METANAS_TEST_FAIL=RANK:ITERATION) ends every rank with a message naming
#    it; the last checkpoint stays loadable, and resuming from it on one
#    process ends bitwise as the uninterrupted run;
#  - ranks with different configurations are refused with a message naming
#    the mismatch (not a failed rank), and nothing is written.
# Skips (77) when the build has no MPI.
# Usage: distributed_fault_test.sh BIN_DIR WORK_DIR SOURCE_DIR MPIEXEC
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
common=(--config "$cfg" --quiet --threads 1 --iterations 6 --meta.meta_batch_size 2 --set meta.task_parallel=true
  --run.checkpoint_every 1 --run.val_every 0)

"$bin/meta-train" "${common[@]}" --out "$work/straight"

# Rank 1 throws as it starts meta-iteration 4.
rc=0
METANAS_TEST_FAIL=1:4 "${mpi[@]}" -x METANAS_TEST_FAIL -np 2 "$bin/meta-train" "${common[@]}" --out "$work/err" \
  >"$work/err.txt" 2>&1 || rc=$?
[ "$rc" != 0 ] || { cat "$work/err.txt"; fail "mpirun succeeded although rank 1 failed"; }
grep -q "meta-train (rank 1 of 2): error: fault injected by METANAS_TEST_FAIL=1:4" "$work/err.txt" ||
  { cat "$work/err.txt"; fail "the error is not reported with its rank"; }
grep -q "rank 1 stopped with this error; ending all ranks" "$work/err.txt" ||
  { cat "$work/err.txt"; fail "no line saying that rank 1 ends the run"; }
# The last checkpoint is intact: iteration 3 (or 2, if rank 0 was ended
# while writing 3), loadable, and the run resumes from it.
"$bin/meta-test" --run "$work/err" --tasks 2 --quiet --report "$work/err-test.json" >/dev/null
it=$(grep '"iteration"' "$work/err-test.json" | head -1 | tr -dc 0-9)
[ "$it" = 3 ] || [ "$it" = 2 ] || fail "the checkpoint left is at iteration $it, not 2 or 3"
"$bin/meta-train" --out "$work/err" --resume --quiet >/dev/null
"$bin/checkpoint-diff" "$work/straight/checkpoint.mnck" "$work/err/checkpoint.mnck" --ignore-meta /program/elapsed_s \
  --ignore-meta /program/saved_at || fail "the run resumed after the fault differs from the straight run"

# A malformed injection is an error too (the hook is not silently ignored).
rc=0
METANAS_TEST_FAIL=x "$bin/meta-train" "${common[@]}" --out "$work/bad" >"$work/bad.txt" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q "expected RANK:ITERATION" "$work/bad.txt" || { cat "$work/bad.txt"; fail "bad METANAS_TEST_FAIL accepted"; }

# Mismatched configurations: the message names the mismatch, not a failure.
rc=0
"${mpi[@]}" -np 1 "$bin/meta-train" "${common[@]}" --out "$work/mismatch" : \
  -np 1 "$bin/meta-train" "${common[@]}" --out "$work/mismatch" --seed 6 >"$work/mismatch.txt" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "ranks with different configurations were not refused"
grep -q "of rank 1 differs from rank 0" "$work/mismatch.txt" || { cat "$work/mismatch.txt"; fail "the refusal does not name rank 1"; }
grep -q "the ranks disagree; nothing was run or written" "$work/mismatch.txt" ||
  { cat "$work/mismatch.txt"; fail "the refusal does not say the ranks disagree"; }
if grep -q "stopped with this error\|failed; stopping" "$work/mismatch.txt"; then
  cat "$work/mismatch.txt"; fail "the refusal is reported as a failed rank"
fi
[ ! -f "$work/mismatch/checkpoint.mnck" ] || fail "a refused run wrote a checkpoint"
echo "distributed fault test passed"
