#!/usr/bin/env bash
# make-triplemnist end to end: IDX fixtures written with printf (20 flat
# "digits", two of each label), bad input (missing --labels, truncated IDX,
# wrong magic, non-empty output folder) as clear errors, a generated set in
# the released layout, and meta-train / meta-test on it (--dataset
# triplemnist) for two iterations.
# Usage: triplemnist_test.sh BIN_DIR WORK_DIR SOURCE_DIR
set -euo pipefail
bin=$1 work=$2 src=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
expect_error() {  # STATUS PATTERN CMD...
  local want=$1 pattern=$2
  shift 2
  local rc=0
  "$@" >"$work/out.txt" 2>"$work/err.txt" || rc=$?
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want; stderr: $(cat "$work/err.txt")"
  grep -q -- "$pattern" "$work/err.txt" || fail "'$*': stderr lacks '$pattern': $(cat "$work/err.txt")"
}

# idx1: magic 0 0 8 1, count 20, labels 0..9 0..9; idx3: count 20, 28 x 28, bytes 200.
printf '\0\0\10\1\0\0\0\24' >"$work/labels.idx"
for i in 0 1; do printf '\0\1\2\3\4\5\6\7\10\11' >>"$work/labels.idx"; done
printf '\0\0\10\3\0\0\0\24\0\0\0\34\0\0\0\34' >"$work/images.idx"
head -c $((20 * 784)) /dev/zero | tr '\0' '\310' >>"$work/images.idx"
head -c 1000 "$work/images.idx" >"$work/cut.idx"
{ printf 'P5\n'; tail -c +4 "$work/images.idx"; } >"$work/magic.idx"

"$bin/make-triplemnist" --help | grep -q "^usage: make-triplemnist" || fail "--help has no usage line"
expect_error 2 "one --labels per --images" "$bin/make-triplemnist" --images "$work/images.idx" --out "$work/x"
expect_error 2 "unknown option" "$bin/make-triplemnist" --images "$work/images.idx" --labels "$work/labels.idx" --out "$work/x" --bogus 1
expect_error 1 "cut.idx' is truncated" "$bin/make-triplemnist" --images "$work/cut.idx" --labels "$work/labels.idx" --out "$work/x"
expect_error 1 "magic.idx': wrong magic" "$bin/make-triplemnist" --images "$work/magic.idx" --labels "$work/labels.idx" --out "$work/x"

cat >"$work/split.json" <<'JSON'
{"train": ["012", "345", "678", "901"], "val": ["111", "222", "333"], "test": ["444", "555", "666"]}
JSON
"$bin/make-triplemnist" --images "$work/images.idx" --labels "$work/labels.idx" --out "$work/tm" \
  --images-per-class 5 --split-file "$work/split.json" --threads 2 >"$work/gen.txt"
grep -q "train    4 / 4 classes" "$work/gen.txt" || fail "no progress output: $(cat "$work/gen.txt")"
[ "$(ls "$work/tm/train/345" | wc -l)" = 5 ] || fail "train/345 does not hold 5 images"
test -f "$work/tm/test/666/4_666.png" || fail "test/666/4_666.png missing"
expect_error 1 "is not empty" "$bin/make-triplemnist" --images "$work/images.idx" --labels "$work/labels.idx" \
  --out "$work/tm" --split-file "$work/split.json"

cfg=$src/tests/programs/tiny.json
common=(--config "$cfg" --dataset triplemnist --data "$work/tm" --iterations 2 --set run.val_every=0)
"$bin/meta-train" "${common[@]}" --quiet --out "$work/run"
test -f "$work/run/checkpoint.mnck" || fail "meta-train wrote no checkpoint"
"$bin/meta-test" --run "$work/run" --tasks 2 --report "$work/report.json" >/dev/null
grep -q '"triplemnist"' "$work/report.json" || fail "meta-test report does not name the dataset"
echo "triplemnist program test passed"
