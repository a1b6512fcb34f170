#!/usr/bin/env bash
# Writes datasets/splits/omniglot-vinyals/{train,val,test}.txt: the Omniglot
# split of Vinyals et al. (2016), one "Alphabet/characterNN" per line, from
# its rule (the same rule as omniglot_vinyals_split() in
# datasets/src/splits.cpp; tests/datasets/splits_test.cpp checks they agree):
#   - list the evaluation characters alphabet by alphabet (folder names
#     sorted) and character by character: the last 423 are test;
#   - the background alphabets Armenian, Bengali, Early_Aramaic, Hebrew and
#     Mkhedruli_(Georgian) are val (172 characters);
#   - all other characters are train (1028).
# Usage: scripts/make-omniglot-vinyals-split.sh [OUTDIR]
set -euo pipefail
out=${1:-"$(dirname "$0")/../datasets/splits/omniglot-vinyals"}
mkdir -p "$out"

# Alphabet folder name and character count, as in the official zips.
background="Alphabet_of_the_Magi 20
Anglo-Saxon_Futhorc 29
Arcadian 26
Armenian 41
Asomtavruli_(Georgian) 40
Balinese 24
Bengali 46
Blackfoot_(Canadian_Aboriginal_Syllabics) 14
Braille 26
Burmese_(Myanmar) 34
Cyrillic 33
Early_Aramaic 22
Futurama 26
Grantha 43
Greek 24
Gujarati 48
Hebrew 22
Inuktitut_(Canadian_Aboriginal_Syllabics) 16
Japanese_(hiragana) 52
Japanese_(katakana) 47
Korean 40
Latin 26
Malay_(Jawi_-_Arabic) 40
Mkhedruli_(Georgian) 41
N_Ko 33
Ojibwe_(Canadian_Aboriginal_Syllabics) 14
Sanskrit 42
Syriac_(Estrangelo) 23
Tagalog 17
Tifinagh 55"
evaluation="Angelic 20
Atemayar_Qelisayer 26
Atlantean 26
Aurek-Besh 26
Avesta 26
Ge_ez 26
Glagolitic 45
Gurmukhi 45
Kannada 41
Keble 26
Malayalam 47
Manipuri 40
Mongolian 30
Old_Church_Slavonic_(Cyrillic) 45
Oriya 46
Sylheti 28
Syriac_(Serto) 23
Tengwar 25
Tibetan 42
ULOG 26"
val_alphabets=" Armenian Bengali Early_Aramaic Hebrew Mkhedruli_(Georgian) "

expand() {  # "Name count" lines (sorted bytewise) -> Name/characterNN lines
  LC_ALL=C sort | while read -r name count; do
    for ((k = 1; k <= count; k++)); do printf '%s/character%02d\n' "$name" "$k"; done
  done
}

bg=$(printf '%s\n' "$background" | expand)
ev=$(printf '%s\n' "$evaluation" | expand)
n_ev=$(printf '%s\n' "$ev" | wc -l)
{
  while read -r c; do [[ $val_alphabets == *" ${c%%/*} "* ]] || echo "$c"; done <<<"$bg"
  printf '%s\n' "$ev" | head -n $((n_ev - 423))
} >"$out/train.txt"
while read -r c; do [[ $val_alphabets == *" ${c%%/*} "* ]] && echo "$c"; done <<<"$bg" >"$out/val.txt"
printf '%s\n' "$ev" | tail -n 423 >"$out/test.txt"
wc -l "$out"/{train,val,test}.txt
