#!/usr/bin/env bash
# Installs dependencies, builds everything and runs every test (ctest).
# Tests that need a GPU report "skipped" on machines without one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" --timeout 1500 ${CTEST_ARGS:-}
