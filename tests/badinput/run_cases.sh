#!/usr/bin/env bash
# The bad-input corpus: every line of cases.txt is one thing a user can get
# wrong (or a fault: a damaged checkpoint, a killed run, a read-only folder),
# with the exit status and the words the message must contain. Each case runs
# in a fresh folder; fixtures (a tiny interrupted run, an Omniglot-style
# folder, MiniImageNet csv files, one-shot runs) are built once.
# Usage: run_cases.sh BIN_DIR WORK_DIR SOURCE_DIR [CASE_NAME_FILTER]
set -uo pipefail
bin=$(cd "$1" && pwd) src=$(cd "$3" && pwd) work=$2 filter=${4:-}
mkdir -p "$work" && work=$(cd "$work" && pwd)
cases=$src/tests/badinput/cases.txt
rm -rf "$work"
mkdir -p "$work/fix"
fail() { echo "FAIL: $*"; exit 1; }

export MT="$bin/meta-train" MTEST="$bin/meta-test" DIFF="$bin/checkpoint-diff" TINY=$src/tests/programs/tiny.json
export SRC_DIR=$src FIX=$work/fix METANAS_CACHE_DIR=$work/cache

# ---- fixtures ----
"$MT" --config "$TINY" --out "$FIX/run" --quiet --stop-after 3 --set run.val_every=0 >/dev/null ||
  fail "could not build the fixture run"
# An Omniglot-style folder (3 alphabets x 3 characters x 3 drawers, 28 px).
"$bin/make-synthetic" --out "$FIX/og" --alphabets 4 --classes-per-alphabet 3 --drawers 3 --size 28 >/dev/null ||
  fail "could not build the Omniglot-style fixture"
first_png=$(find "$FIX/og/images_background" -name '*.png' | sort | head -1)
cp -r "$FIX/og" "$FIX/og-corrupt"
printf 'not a png at all' >"$FIX/og-corrupt/${first_png#"$FIX/og/"}"
cp -r "$FIX/og" "$FIX/og-truncated"
head -c 60 "$first_png" >"$FIX/og-truncated/${first_png#"$FIX/og/"}"
# MiniImageNet csv layouts with one broken row each.
mkdir -p "$FIX/mini/images"
cp "$first_png" "$FIX/mini/images/a.png"
printf 'filename,label\na.png,n01\nmissing.png,n01\n' >"$FIX/mini/train.csv"
mkdir -p "$FIX/mini-badcsv/images"
printf 'filename;label\na.png\n' >"$FIX/mini-badcsv/train.csv"
# One-shot runs: a run folder without its class_labels.txt.
mkdir -p "$FIX/runs/run01/training" "$FIX/runs/run01/test"
for k in 01 02 03; do cp "$first_png" "$FIX/runs/run01/training/class$k.png"; done

# ---- cases ----
n=0 bad=0
while IFS= read -r line; do
  case "$line" in '' | '#'*) continue ;; esac
  name=${line%%|*}; rest=${line#*|}
  want=${rest%%|*}; rest=${rest#*|}
  words=${rest%%|*}; cmd=${rest#*|}
  name=$(echo "$name" | xargs); want=$(echo "$want" | xargs); words=$(echo "$words" | sed 's/^ *//; s/ *$//')
  [ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && continue
  n=$((n + 1))
  dir=$work/case-$n
  mkdir -p "$dir"
  rc=0
  (cd "$dir" && timeout 120 bash -c "$cmd") >"$dir/out.txt" 2>&1 || rc=$?
  ok=1
  [ "$rc" = "$want" ] || ok=0
  IFS=';' read -ra ws <<<"$words"
  for w in "${ws[@]}"; do
    w=$(echo "$w" | sed 's/^ *//; s/ *$//')
    [ -z "$w" ] && continue
    grep -q -F -- "$w" "$dir/out.txt" || ok=0
  done
  if [ "$ok" = 1 ]; then
    echo "ok   $name"
  else
    bad=$((bad + 1))
    echo "FAIL $name: exit $rc (want $want), want words [$words]; output:"
    sed 's/^/     /' "$dir/out.txt" | tail -8
  fi
done <"$cases"
[ "$n" -gt 0 ] || fail "no case matched '$filter'"
echo "$((n - bad)) of $n bad-input cases passed"
[ "$bad" = 0 ]
