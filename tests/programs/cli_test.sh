#!/usr/bin/env bash
# Command-line checks of the programs: --help works and documents the named
# flags; mistakes (unknown flags, unknown keys, badly typed values) are clear
# errors with exit status 2; every preset in configs/ resolves; docs/cli.md
# mentions every configuration key that `meta-train --list-keys` prints.
# Usage: cli_test.sh BIN_DIR WORK_DIR SOURCE_DIR
set -euo pipefail
bin=$1 work=$2 src=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

# expect_error STATUS PATTERN CMD...: CMD must exit with STATUS and print PATTERN on stderr.
expect_error() {
  local want=$1 pattern=$2
  shift 2
  local rc=0
  "$@" >"$work/out.txt" 2>"$work/err.txt" || rc=$?
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want; stderr: $(cat "$work/err.txt")"
  grep -q -- "$pattern" "$work/err.txt" || fail "'$*': stderr lacks '$pattern': $(cat "$work/err.txt")"
}

for p in meta-train meta-test checkpoint-diff; do
  "$bin/$p" --help >"$work/help.txt"
  grep -q "^usage: $p" "$work/help.txt" || fail "$p --help has no usage line"
done
for f in --config --out --resume --ways --shots --query --dataset --data --algorithm --device --seed --set; do
  "$bin/meta-train" --help | grep -q -- "  $f" || fail "meta-train --help does not document $f"
done
for f in --run --checkpoint --split --runs --tasks --shots --seed --out --report; do
  "$bin/meta-test" --help | grep -q -- "  $f" || fail "meta-test --help does not document $f"
done

cfg=$src/tests/programs/tiny.json
expect_error 2 "unknown option" "$bin/meta-train" --config "$cfg" --bogus
expect_error 2 "unknown option or configuration key 'meta.nosuch'" "$bin/meta-train" --config "$cfg" --set meta.nosuch=1
expect_error 2 "expects a number" "$bin/meta-train" --config "$cfg" --meta.w_lr fast
expect_error 2 "is not an integer" "$bin/meta-train" --config "$cfg" --ways five
expect_error 2 "unknown meta-learning algorithm" "$bin/meta-train" --config "$cfg" --algorithm nosuch --print-config
expect_error 2 "\-\-help" "$bin/meta-train" --config "$cfg" --bogus
echo '{"meta": {"iterations": 5, "typo_key": 1}}' >"$work/bad.json"
expect_error 2 "unknown key 'meta.typo_key'" "$bin/meta-train" --config "$work/bad.json"
echo '{"data": {"datset": "omniglot"}}' >"$work/bad2.json"
expect_error 2 "unknown key 'data.datset'" "$bin/meta-train" --config "$work/bad2.json"
expect_error 2 "needs its folder" "$bin/meta-train" --config "$cfg" --dataset omniglot --out "$work/og"
expect_error 2 "does not exist" "$bin/meta-test" --run "$work/nothing-here"

# Overrides land in the resolved configuration; --ways changes the model too.
"$bin/meta-train" --config "$cfg" --ways 4 --set task.darts.w_lr=0.125 --meta.meta-batch-size 3 --print-config \
  >"$work/resolved.json"
grep -q '"w_lr": 0.125' "$work/resolved.json" || fail "--set task.darts.w_lr did not apply"
grep -q '"meta_batch_size": 3' "$work/resolved.json" || fail "--meta.meta-batch-size did not apply"
[ "$(grep -c '"num_classes": 4' "$work/resolved.json")" = 4 ] || fail "--ways 4 did not set every model's num_classes"

for c in "$src"/configs/*.json; do
  "$bin/meta-train" --config "$c" --print-config >/dev/null || fail "preset $c does not resolve"
done

"$bin/meta-train" --list-keys >"$work/keys.txt"
[ "$(wc -l <"$work/keys.txt")" -gt 80 ] || fail "--list-keys printed too few keys"
missing=0
while IFS= read -r line; do
  key=${line%% = *}
  grep -q -F "\`$key\`" "$src/docs/cli.md" || { echo "docs/cli.md does not document \`$key\`"; missing=1; }
done <"$work/keys.txt"
[ "$missing" = 0 ] || fail "docs/cli.md is missing configuration keys"
echo "cli test passed"
