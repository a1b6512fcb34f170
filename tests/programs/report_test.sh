#!/usr/bin/env bash
# meta-report: the page of a meta-trained and meta-tested run is one
# self-contained file (no script, no external resource) with every section;
# several runs are overlaid; bad arguments are clear errors. Then headless
# Chromium renders it: the screenshot must not be blank and the page must log
# no script error (a page with a deliberate error checks that the detector
# works). Chromium is installed with apt-get when missing and possible (root,
# within 3 minutes); otherwise the rendering part exits 77 (ctest: skipped)
# after the checks above have passed.
# Usage: report_test.sh BIN_DIR WORK_DIR SOURCE_DIR
set -euo pipefail
bin=$1 work=$2 src=$3
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
cfg=$src/tests/programs/tiny.json

"$bin/meta-train" --config "$cfg" --out "$work/a" --quiet
"$bin/meta-test" --run "$work/a" --tasks 4 --quiet >/dev/null
"$bin/meta-train" --config "$cfg" --out "$work/b" --quiet --seed 9 --iterations 4
"$bin/meta-report" "$work/a" | grep -q "report: $work/a/report.html" || fail "meta-report did not name its page"
page=$work/a/report.html
for want in "query and support loss" "query and support accuracy" "meta learning rates" "softmax temperature" \
  "validation accuracy" "normal cell" "reduce cell" "final genotype" "per-task accuracy" \
  "sparse parameters of the adapted task models" "most common adapted genotypes" "Genotype(normal="; do
  grep -q -F "$want" "$page" || fail "the page lacks '$want'"
done
[ "$(grep -o '<svg' "$page" | wc -l)" -ge 10 ] || fail "too few inline SVG figures"
# Self-contained: nothing fetched, nothing run (the SVG namespace is not a fetch).
sed 's|xmlns="http://www.w3.org/2000/svg"||g; s|xmlns:xlink="http://www.w3.org/1999/xlink"||g' "$page" \
  >"$work/stripped.html"
if grep -q -i -E '<script|<link|<iframe|src="(http|//)|href="(http|//)|url\(|@import' "$work/stripped.html"; then
  fail "the page refers to external resources or contains script"
fi
# Validation points and their interval: the last validation's accuracy is in the summary.
last=$(grep '"type":"val"' "$work/a/metrics.jsonl" | tail -1 | python3 -c 'import json,sys; print("%.4g" % (100 * json.load(sys.stdin)["accuracy"]))')
grep -q -F "$last% &plusmn;" "$page" || fail "the summary lacks the last validation accuracy $last%"

"$bin/meta-report" "$work/a" "$work/b" --out "$work/both.html" >/dev/null
grep -q -F "a: query loss" "$work/both.html" && grep -q -F "b: query loss" "$work/both.html" ||
  fail "the overlay lacks one run's curves"
rc=0; "$bin/meta-report" "$work/nothing" 2>"$work/err.txt" || rc=$?
[ "$rc" = 2 ] && grep -q "not a folder" "$work/err.txt" || fail "a missing folder: exit $rc, $(cat "$work/err.txt")"
mkdir -p "$work/empty"; rc=0; "$bin/meta-report" "$work/empty" 2>"$work/err.txt" || rc=$?
[ "$rc" = 2 ] && grep -q "no metrics.jsonl" "$work/err.txt" || fail "a non-run folder: exit $rc"
echo "report content checks passed"

# ---- rendering in headless Chromium ----
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$chrome" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  timeout 180 apt-get install -y --no-install-recommends chromium >"$work/apt.log" 2>&1 || true
  chrome=$(command -v chromium || true)
fi
[ -n "$chrome" ] || { echo "SKIP: chromium is not installed and could not be installed"; exit 77; }
render() {  # render PAGE PNG ERRLOG
  timeout 90 "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars --enable-logging=stderr --v=0 \
    --window-size=1200,1600 --screenshot="$2" "file://$1" >/dev/null 2>"$3" || true
}
script_errors() { grep -E 'CONSOLE|Uncaught' "$1" || true; }
echo '<html><body><p>x</p><script>no_such_function();</script></body></html>' >"$work/broken.html"
render "$work/broken.html" "$work/broken.png" "$work/broken.log"
[ -n "$(script_errors "$work/broken.log")" ] || { echo "SKIP: this chromium does not report console errors"; exit 77; }
render "$page" "$work/shot.png" "$work/shot.log"
[ -s "$work/shot.png" ] || fail "chromium wrote no screenshot; $(tail -3 "$work/shot.log")"
[ -z "$(script_errors "$work/shot.log")" ] || fail "script errors: $(script_errors "$work/shot.log")"
# Not blank: the decompressed pixel rows must hold many distinct byte values
# (a blank page is one colour: a handful).
python3 - "$work/shot.png" <<'PY'
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
at, idat, w, h = 8, b"", 0, 0
while at < len(b):
    n, t = struct.unpack(">I4s", b[at:at + 8])
    if t == b"IHDR":
        w, h = struct.unpack(">II", b[at + 8:at + 16])
    elif t == b"IDAT":
        idat += b[at + 8:at + 8 + n]
    at += 12 + n
raw = zlib.decompress(idat)
distinct = len(set(raw))
assert w >= 800 and h >= 800, (w, h)
assert distinct > 40, "the screenshot looks blank (%d distinct byte values)" % distinct
print("screenshot %dx%d, %d distinct byte values" % (w, h, distinct))
PY
echo "report test passed"
