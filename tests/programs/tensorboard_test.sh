#!/usr/bin/env bash
# meta-train's TensorBoard events read back by TensorBoard's own reader
# (tensorboard's EventFileLoader): every metrics.jsonl train and validation
# record appears as scalars with the same step and value, and the genotype
# image (when Graphviz's dot is installed) is a PNG. Installs tensorboard with
# pip into the work folder when it is missing; exits 77 (ctest: skipped) when
# that is impossible.
# Usage: tensorboard_test.sh BIN_DIR WORK_DIR SOURCE_DIR
set -euo pipefail
bin=$1 work=$2 src=$3
rm -rf "$work"
mkdir -p "$work"
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
# (the package itself: ctest runs in a folder holding a "tensorboard" work dir,
# which Python would import as an empty namespace package)
if ! python3 -c "import tensorboard.backend.event_processing" 2>/dev/null; then
  timeout 180 python3 -m pip install --quiet --target "$work/py" tensorboard >"$work/pip.log" 2>&1 ||
    { echo "SKIP: tensorboard is not installed and pip could not install it"; tail -3 "$work/pip.log"; exit 77; }
  export PYTHONPATH=$work/py${PYTHONPATH:+:$PYTHONPATH}
fi
"$bin/meta-train" --config "$src/tests/programs/tiny.json" --out "$work/run" --quiet
python3 - "$work/run" <<'PY'
import glob, json, math, shutil, sys
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

run = sys.argv[1]
files = glob.glob(run + "/tb/events.out.tfevents.*")
assert len(files) == 1, files
scalars, images, version = {}, {}, None
for e in EventFileLoader(files[0]).Load():
    if e.HasField("file_version"):
        version = e.file_version
    for v in e.summary.value:
        if v.metadata.plugin_data.plugin_name == "images":
            images[(v.tag, e.step)] = v.tensor.string_val
        else:
            scalars[(v.tag, e.step)] = v.tensor.float_val[0] if v.tensor.float_val else v.simple_value
assert version == "brain.Event:2", version
recs = [json.loads(l) for l in open(run + "/metrics.jsonl")]
checked = 0
def same(tag, step, want):
    global checked
    got = scalars.get((tag, step))
    assert got is not None, f"no scalar {tag} at step {step}"
    assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-7), (tag, step, got, want)
    checked += 1
for r in recs:
    it = r["iteration"]
    if r["type"] == "train":
        for k, tag in [("query_loss", "train/query_loss"), ("query_acc", "train/query_acc"),
                       ("support_loss", "train/support_loss"), ("support_acc", "train/support_acc"),
                       ("w_lr", "lr/meta_w"), ("a_lr", "lr/meta_a"), ("temperature", "train/temperature"),
                       ("pruned", "train/pruned_ops"), ("active_ops", "train/active_ops")]:
            if r.get(k) is not None:
                same(tag, it, r[k])
    else:
        same("val/accuracy", it, r["accuracy"])
        same("val/ci95", it, r["ci95"])
        same("val/sparse_params", it, r["sparse_params_mean"])
        if shutil.which("dot"):
            img = images.get(("genotype", it))
            assert img is not None and len(img) == 3 and img[2][:4] == b"\x89PNG", "no genotype image at %d" % it
assert checked >= 20, checked
print("tensorboard test passed: %d scalars and %d images match metrics.jsonl" % (checked, len(images)))
PY
