#!/usr/bin/env bash
# Every preset in configs/ meta-trains 2 iterations and meta-tests 2 tasks,
# with its own hyperparameters, on small synthetic characters (the real
# datasets are not part of a clone). Overridden, for time only: the data
# source and image size (16x16 gray; 3-channel presets get 1 input channel),
# the meta-batch (2 tasks), inner and test steps (at most 2 each), warm-up
# (1 iteration, so the second exercises the architecture path) and the
# logging/checkpoint intervals, and a meta-RL preset's episodes and agent width. Everything else (model, optimizers, batch
# sizes, replacement, restoring the task optimizer, transduction, rotations,
# inversion) runs as the preset sets it. Presets with eval.mode retrain
# decode and retrain with 2 FOMAML iterations, and Auto-MAML's image split
# gets 40 drawers per synthetic class.
# Usage: presets_run_test.sh BIN_DIR WORK_DIR SOURCE_DIR
set -euo pipefail
bin=$1 work=$2 src=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

n=0
for c in "$src"/configs/*.json; do
  name=$(basename "$c" .json)
  "$bin/meta-train" --config "$c" --print-config >"$work/$name.resolved.json"
  kind=$(grep -o '"kind": "[a-z0-9]*"' "$work/$name.resolved.json" | head -1 | sed 's/.*: "\(.*\)"/\1/')
  extra=(--set "model.$kind.image_size=16")
  steps=$(sed -n '/"eval": {/,/}/p' "$work/$name.resolved.json" | grep -o '"arch_steps": [0-9]*' | grep -o '[0-9]*$')
  [ "$steps" -gt 0 ] && extra+=(--set eval.arch_steps=1) # keep the preset's choice of adapting alphas or not
  # A meta-RL preset: a one-estimation episode per cell and a small agent (each
  # estimation is a DARTS step on the whole support set).
  if grep -A3 '"meta_rl": {' "$work/$name.resolved.json" | grep -q '"agent": "\(ppo\|random\)"'; then
    extra+=(--set meta_rl.max_steps=4 --set meta_rl.estimations=1 --set meta_rl.episodes=1
      --set meta_rl.steps_per_epoch=4 --set meta_rl.test_episodes=1 --set meta_rl.hidden=16)
  fi
  if grep -A12 "\"$kind\": {" "$work/$name.resolved.json" | grep -q '"in_channels": 3'; then
    extra+=(--set "model.$kind.in_channels=1")
  fi
  # Auto-MAML's image split halves every class: twice the drawers keep
  # shots + queries images in each half.
  drawers=20
  grep -q '"auto_maml_split": "images"' "$work/$name.resolved.json" && drawers=40
  # Decode-and-retrain presets: 2 FOMAML iterations and 1 fine-tuning step
  # for each decoded network.
  test_extra=()
  if grep -q '"mode": "retrain"' "$work/$name.resolved.json"; then
    test_extra=(--set eval.retrain.meta_iterations=2 --set eval.retrain.meta_batch_size=2
                --set eval.retrain.task_steps=1 --set eval.retrain.steps=1)
  fi
  # AT-NAS: a tiny per-task search at meta-test (2 generations of 3 subnets, 1 fitness step).
  if grep -q '"algorithm": "atnas"' "$work/$name.resolved.json"; then
    test_extra+=(--set atnas.population=3 --set atnas.top_k=2 --set atnas.mutants=2 --set atnas.crossovers=1
                 --set atnas.generations=1 --set atnas.fitness_steps=1)
  fi
  start=$(date +%s)
  "$bin/meta-train" --config "$c" --quiet --out "$work/$name" --dataset synthetic --iterations 2 \
    --set meta.meta_batch_size=2 --set meta.warmup_iterations=1 --set data.image_size=16 --set task.steps=2 \
    --set data.synthetic_alphabets=12 --set data.synthetic_classes_per_alphabet=12 \
    --set data.synthetic_drawers=$drawers --set data.cache=false --set run.val_every=0 \
    --set run.checkpoint_every=0 --set run.log_every=1 --set run.threads=1 "${extra[@]}" \
    || fail "preset $name does not meta-train"
  test -f "$work/$name/checkpoint.mnck" || fail "preset $name wrote no checkpoint"
  [ "$(grep -c '"iteration"' "$work/$name/metrics.jsonl")" -ge 2 ] || fail "preset $name logged fewer than 2 iterations"
  "$bin/meta-test" --run "$work/$name" --tasks 2 --threads 1 --set eval.weight_steps=1 ${test_extra[@]+"${test_extra[@]}"} --report "$work/$name-test.json" >"$work/$name-test.txt" 2>&1 \
    || fail "preset $name does not meta-test"
  grep -q '"accuracy"' "$work/$name-test.json" || fail "preset $name: no accuracy in the meta-test report"
  echo "$name: $(( $(date +%s) - start )) s"
  n=$((n + 1))
done
[ "$n" -ge 8 ] || fail "only $n presets found"
echo "presets run test passed ($n presets)"
