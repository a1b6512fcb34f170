#!/usr/bin/env bash
# Installs dependencies, builds everything and runs every test (ctest).
# Tests that need a GPU report "skipped" on machines without one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
# ctest runs two test processes on two cores; spinning OpenMP workers would
# then steal each other's cores and stall, so idle threads sleep instead.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 1500 ${CTEST_ARGS:-}
