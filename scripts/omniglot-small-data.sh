#!/usr/bin/env bash
# Prepares the Omniglot small subsets shipped in data/omniglot for the
# quickstart and scripts/omniglot-small-check.sh: verifies the zips against
# data/omniglot/SHA256SUMS, unpacks them once into the cache folder and writes
# the split file (train = every character of images_background_small1; test =
# the alphabets of images_background_small2 that small1 lacks, so every test
# class is new). Prints the prepared folder (the dataset root; split.json is
# inside it) as its last line of stdout; messages go to stderr.
#
# Usage: scripts/omniglot-small-data.sh
# Environment: ZIPS (folder holding the two zips; default data/omniglot of this
# repository; its SHA256SUMS is used when present, else the shipped one),
# DEST (default <cache>/omniglot-small, <cache> as the library picks it:
# $METANAS_CACHE_DIR, $XDG_CACHE_HOME/metanas, ~/.cache/metanas, /tmp/metanas-cache).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
ZIPS=${ZIPS:-$repo/data/omniglot}
die() { echo "omniglot-small-data: error: $*" >&2; exit 1; }

if [ -n "${METANAS_CACHE_DIR:-}" ]; then cache=$METANAS_CACHE_DIR
elif [ -n "${XDG_CACHE_HOME:-}" ]; then cache=$XDG_CACHE_HOME/metanas
elif [ -n "${HOME:-}" ]; then cache=$HOME/.cache/metanas
else cache=/tmp/metanas-cache
fi
DEST=${DEST:-$cache/omniglot-small}

sums=$ZIPS/SHA256SUMS
[ -f "$sums" ] || sums=$repo/data/omniglot/SHA256SUMS
[ -f "$sums" ] || die "checksum list '$sums' not found (it ships with the repository: restore it with git checkout data/omniglot)"
command -v unzip >/dev/null || die "'unzip' is not installed (run scripts/install-deps.sh, or apt-get install unzip)"

names=(images_background_small1 images_background_small2)
for z in "${names[@]}"; do
  f=$ZIPS/$z.zip
  [ -f "$f" ] || die "'$f' not found: it ships with the repository (restore it with git checkout data/omniglot), or set ZIPS to a folder holding it; the original is python/$z.zip of https://github.com/brendenlake/omniglot"
  want=$(awk -v n="$z.zip" '$2 == n || $2 == "*" n { print $1 }' "$sums")
  [ -n "$want" ] || die "'$sums' has no checksum for $z.zip"
  got=$(sha256sum "$f" | cut -d' ' -f1)
  [ "$got" = "$want" ] || die "'$f' is corrupt or not the expected file (SHA-256 $got, expected $want): restore it with git checkout data/omniglot, or download python/$z.zip from https://github.com/brendenlake/omniglot again"
done

# Unpack each zip once. The stamp holds the zip's checksum, so a different zip
# (another ZIPS) unpacks again; the unpacking goes to a temporary folder that
# is renamed, so an interrupted run never leaves a half-unpacked set behind.
mkdir -p "$DEST" || die "cannot create '$DEST' (set METANAS_CACHE_DIR or DEST to a writable folder)"
for z in "${names[@]}"; do
  want=$(awk -v n="$z.zip" '$2 == n || $2 == "*" n { print $1 }' "$sums")
  if [ -d "$DEST/$z" ] && [ "$(cat "$DEST/$z.sha256" 2>/dev/null)" = "$want" ]; then continue; fi
  tmp=$(mktemp -d "$DEST/.unpack.XXXXXX")
  unzip -q "$ZIPS/$z.zip" -d "$tmp" || { rm -rf "$tmp"; die "cannot unpack '$ZIPS/$z.zip' into '$DEST'"; }
  [ -d "$tmp/$z" ] || { rm -rf "$tmp"; die "'$ZIPS/$z.zip' does not hold the folder $z/"; }
  rm -rf "$DEST/$z"
  mv "$tmp/$z" "$DEST/$z"
  rm -rf "$tmp"
  echo "$want" >"$DEST/$z.sha256"
  echo "omniglot-small-data: unpacked $z.zip into $DEST" >&2
done

# The split file. Names are looked up in background_dir (small1) first, then
# in evaluation_dir (small2).
list_chars() {  # DIR ALPHABET... -> "Alphabet/characterNN" JSON strings, one per line
  local dir=$1
  shift
  for a in "$@"; do
    for c in "$dir/$a"/character*; do printf '"%s/%s"\n' "$a" "$(basename "$c")"; done
  done
}
mapfile -t train_alphabets < <(cd "$DEST/images_background_small1" && ls -d -- */ | tr -d /)
test_alphabets=()
for a in $(cd "$DEST/images_background_small2" && ls -d -- */ | tr -d /); do
  [ -d "$DEST/images_background_small1/$a" ] || test_alphabets+=("$a")
done
[ ${#test_alphabets[@]} -gt 0 ] || die "images_background_small2 has no alphabet that small1 lacks"
echo "omniglot-small-data: train alphabets: ${train_alphabets[*]}" >&2
echo "omniglot-small-data: test alphabets:  ${test_alphabets[*]}" >&2
{
  echo '{"train": ['
  list_chars "$DEST/images_background_small1" "${train_alphabets[@]}" | paste -sd, -
  echo '], "test": ['
  list_chars "$DEST/images_background_small2" "${test_alphabets[@]}" | paste -sd, -
  echo ']}'
} >"$DEST/split.json.tmp"
mv "$DEST/split.json.tmp" "$DEST/split.json"
echo "$DEST"
