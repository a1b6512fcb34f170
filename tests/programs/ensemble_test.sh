#!/usr/bin/env bash
# meta-test --ensemble on two tiny MAML++ (convnet4pp) runs: the report has
# both members and an accuracy; an ensemble of one checkpoint with itself
# scores what that checkpoint scores alone; a missing member is a usage error.
# Usage: ensemble_test.sh BIN_DIR WORK_DIR SOURCE_DIR
set -euo pipefail
bin=$1 work=$2 src=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
common=(--config "$src/configs/mamlpp-omniglot-20w1s.json" --quiet --dataset synthetic --iterations 2
  --ways 5 --set model.convnet4pp.image_size=16 --set model.convnet4pp.channels=8 --set data.image_size=16
  --set meta.meta_batch_size=2 --set task.steps=2 --set data.synthetic_alphabets=6
  --set data.synthetic_classes_per_alphabet=6 --set data.synthetic_drawers=6 --set data.cache=false
  --set run.val_every=0 --set run.checkpoint_every=0 --set run.threads=1)
"$bin/meta-train" "${common[@]}" --out "$work/a" --seed 3 || fail "run a"
"$bin/meta-train" "${common[@]}" --out "$work/b" --seed 4 || fail "run b"
"$bin/meta-test" --run "$work/a" --tasks 4 --threads 1 --quiet --ensemble "$work/b/checkpoint.mnck" \
  --report "$work/ens.json" >"$work/ens.txt" || fail "ensemble meta-test"
grep -q "ensemble of 2 checkpoints" "$work/ens.txt" || fail "no ensemble headline"
[ "$(grep -c '"checkpoint":' "$work/ens.json")" -ge 3 ] || fail "the report does not list both members"
"$bin/meta-test" --run "$work/a" --tasks 4 --threads 1 --quiet --report "$work/a1.json" >/dev/null || fail "single"
"$bin/meta-test" --run "$work/a" --tasks 4 --threads 1 --quiet --ensemble "$work/a/checkpoint.mnck" \
  --report "$work/a2.json" >/dev/null || fail "self-ensemble"
acc() { grep -m1 '^  "accuracy"' "$1" | tr -dc '0-9.e-'; }
awk -v x="$(acc "$work/a1.json")" -v y="$(acc "$work/a2.json")" 'BEGIN { d = x - y; exit !(d < 1e-6 && d > -1e-6) }' || fail "a checkpoint ensembled with itself scores $(acc "$work/a2.json"), alone $(acc "$work/a1.json")"
set +e
out=$("$bin/meta-test" --run "$work/a" --tasks 2 --ensemble "$work/nothing.mnck" 2>&1)
rc=$?
set -e
[ $rc = 2 ] || fail "a missing member gave exit $rc"
echo "$out" | grep -q "does not exist" || fail "unclear error: $out"
echo "ensemble test passed"
