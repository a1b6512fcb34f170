#!/usr/bin/env bash
# The README's main command on its real-data path, at a tiny budget, so that
# it cannot rot: scripts/omniglot-small-data.sh verifies and unpacks the
# Omniglot subsets shipped in data/omniglot (checked against the zips' own
# listings), refuses a corrupt or missing zip with a message naming it, and
# scripts/quickstart.sh meta-trains 2 iterations, meta-tests 2 tasks and the
# untrained baseline and prints both. Needs no ../shared.
# Usage: quickstart_test.sh BIN_DIR WORK_DIR SOURCE_DIR
set -euo pipefail
bin=$1 work=$2 src=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
command -v unzip >/dev/null || { echo "SKIP: unzip is not installed"; exit 77; }
export METANAS_CACHE_DIR=$work/cache
zips=$src/data/omniglot

# Reference: the characters each zip holds, from the zip listings (unzip -Z1).
chars() { unzip -Z1 "$zips/$1.zip" | awk -F/ 'NF >= 3 && $3 ~ /^character/ { print $2 "/" $3 }' | sort -u; }
chars images_background_small1 >"$work/small1.txt"
chars images_background_small2 >"$work/small2.txt"
cut -d/ -f1 "$work/small1.txt" | sort -u >"$work/small1-alphabets.txt"
awk -F/ 'NR == FNR { a[$1] = 1; next } !($1 in a)' "$work/small1-alphabets.txt" "$work/small2.txt" \
  >"$work/want-test.txt"
[ -s "$work/small1.txt" ] && [ -s "$work/want-test.txt" ] || fail "reference: empty zip listings"

# 1. Unpacking and the split file.
root=$(bash "$src/scripts/omniglot-small-data.sh" 2>"$work/data-err.txt" | tail -n 1)
[ "$root" = "$work/cache/omniglot-small" ] || fail "data folder '$root', expected $work/cache/omniglot-small"
for z in images_background_small1 images_background_small2; do
  want=$(unzip -Z1 "$zips/$z.zip" | grep -c '\.png$')
  got=$(find "$root/$z" -name '*.png' | wc -l)
  [ "$got" = "$want" ] || fail "$z: $got PNGs unpacked, the zip lists $want"
done
split_list() {  # KEY -> the entries of that list of split.json, one per line, sorted
  awk -v k="\"$1\"" 'index($0, k) { on = 1; next } /\]/ { on = 0 } on' "$root/split.json" |
    tr ',' '\n' | tr -d '"' | sed '/^$/d' | sort
}
split_list train >"$work/got-train.txt"
split_list test >"$work/got-test.txt"
diff "$work/small1.txt" "$work/got-train.txt" >/dev/null || fail "split train list is not every small1 character"
diff "$work/want-test.txt" "$work/got-test.txt" >/dev/null ||
  fail "split test list is not the characters of the small2 alphabets small1 lacks"
# A second call reuses the unpacked folders.
bash "$src/scripts/omniglot-small-data.sh" 2>"$work/data-err2.txt" >/dev/null
! grep -q unpacked "$work/data-err2.txt" || fail "the second call unpacked again"

# 2. A corrupt zip and a missing zip are refused, naming the file.
mkdir -p "$work/bad"
cp "$zips"/images_background_small{1,2}.zip "$work/bad/"
chmod u+w "$work/bad"/*.zip
printf 'X' | dd of="$work/bad/images_background_small2.zip" bs=1 seek=1000 conv=notrunc status=none
rc=0
ZIPS=$work/bad DEST=$work/bad-dest bash "$src/scripts/omniglot-small-data.sh" >/dev/null 2>"$work/err.txt" || rc=$?
[ "$rc" != 0 ] || fail "a corrupt zip was accepted"
grep -q "bad/images_background_small2.zip' is corrupt" "$work/err.txt" || fail "corrupt zip message: $(cat "$work/err.txt")"
[ ! -d "$work/bad-dest/images_background_small2" ] || fail "a corrupt zip was unpacked"
rm "$work/bad/images_background_small1.zip"
rc=0
ZIPS=$work/bad DEST=$work/bad-dest bash "$src/scripts/omniglot-small-data.sh" >/dev/null 2>"$work/err.txt" || rc=$?
[ "$rc" != 0 ] || fail "a missing zip was accepted"
grep -q "bad/images_background_small1.zip' not found" "$work/err.txt" || fail "missing zip message: $(cat "$work/err.txt")"

# 3. The quickstart itself, 2 meta-iterations and 2 test tasks.
SKIP_BUILD=1 BUILD_DIR=$(dirname "$bin") THREADS=1 ITERATIONS=2 TASKS=2 OUT=$work/qs \
  bash "$src/scripts/quickstart.sh" >"$work/qs.txt" 2>&1 || { cat "$work/qs.txt"; fail "quickstart failed"; }
grep -q "^meta-trained (2 iterations): .* over 2 tasks" "$work/qs.txt" || fail "no trained result line: $(tail -20 "$work/qs.txt")"
grep -q "^untrained, same adaptation: .* over 2 tasks" "$work/qs.txt" || fail "no baseline line"
for f in "$work/qs/report.json" "$work/qs-untrained/report.json" "$work/qs/metrics.jsonl" "$work/qs/train.log" \
         "$work/qs/genotype.dot" "$work/qs/checkpoint.mnck"; do
  [ -f "$f" ] || fail "$f missing"
  grep -q -F "$f" "$work/qs.txt" || grep -q -F "$(dirname "$f")/genotype.svg" "$work/qs.txt" ||
    fail "the quickstart does not print where $f is"
done
# Trained on small1 x4 rotations, tested on the new alphabets' characters.
ntrain=$(($(wc -l <"$work/small1.txt") * 4))
grep -q "omniglot train split, $ntrain classes" "$work/qs/train.log" || fail "training split is not $ntrain classes"
ntest=$(wc -l <"$work/want-test.txt")
for r in qs qs-untrained; do
  grep -q "\"classes\": $ntest" "$work/$r/report.json" || fail "$r: test split is not $ntest classes"
done
grep -q '"iteration": 0' "$work/qs-untrained/report.json" || fail "the baseline is not the untrained network"
echo "quickstart_test: ok"
