#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang + ASan/UBSan) into
# ${FUZZ_BUILD_DIR:-build-fuzz} and runs each for ${FUZZ_SECONDS:-60} s on a
# copy of its seed corpus (tests/fuzz/corpus/<target>); crashers land in
# ${FUZZ_BUILD_DIR}/crashes/<target>/. Not part of ctest: the regression inputs
# of fixed crashes are replayed by the normal tests.
# Usage: scripts/fuzz.sh [TARGET ...]   (default: every target)
set -uo pipefail
cd "$(dirname "$0")/.."
B=${FUZZ_BUILD_DIR:-build-fuzz}
secs=${FUZZ_SECONDS:-60}
mkdir -p "$B"
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DMETANAS_FUZZ=ON -DMETANAS_WITH_CUDA=OFF -DMETANAS_BUILD_TESTS=OFF -DMETANAS_BUILD_BENCHMARKS=OFF \
  -DMETANAS_BUILD_PROGRAMS=OFF >"$B/configure.log" 2>&1 || { tail -20 "$B/configure.log"; exit 1; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls tests/fuzz/*_fuzz.cpp | xargs -n1 basename | sed 's/\.cpp$//'))
cmake --build "$B" -j "${FUZZ_JOBS:-2}" --target "${targets[@]}" || exit 1
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in "${targets[@]}"; do
  corpus=$B/corpus/$t crashes=$B/crashes/$t
  rm -rf "$corpus" "$crashes"
  mkdir -p "$corpus" "$crashes"
  cp tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  "$B/bin/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "$corpus" >"$B/$t.log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$B/$t.log" | grep -o '[0-9]*$')
  echo "$t: exit $rc, ${runs:-?} executions in ${secs} s, corpus $(ls "$corpus" | wc -l) inputs, crashers $(ls "$crashes" | wc -l)"
done
