// Class splits: split names, Omniglot's 50 alphabets, the Vinyals et al.
// (2016) Omniglot split (1028 / 172 / 423 characters) and user split files.
#pragma once
#include <string>
#include <vector>

namespace metanas::data {

// "train" | "val" | "test"; also accepts "training", "validation", "valid",
// "testing" and returns the short form. Throws metanas::Error otherwise.
std::string canonical_split(const std::string& split);

// One Omniglot alphabet as distributed (folder name, number of characters,
// and whether it is in images_background or images_evaluation).
struct OmniglotAlphabet {
  const char* name;
  int characters;
  bool background;
};
// The 30 background and 20 evaluation alphabets (964 + 659 = 1623
// characters), background first, each set sorted by folder name.
const std::vector<OmniglotAlphabet>& omniglot_alphabets();

// The alphabets Vinyals et al.'s validation split holds (all of them
// background alphabets): Armenian, Bengali, Early_Aramaic, Hebrew,
// Mkhedruli_(Georgian).
const std::vector<std::string>& omniglot_vinyals_val_alphabets();

// The Vinyals split as "Alphabet/characterNN" names, by this rule (see
// docs/datasets.md): list the evaluation characters alphabet by alphabet
// (folder names sorted) and character by character; the last 423 are test
// (Gurmukhi characters 42-45 and the 12 alphabets after Gurmukhi). The 5
// alphabets above are val (172 characters). Everything else is train: the
// other 25 background alphabets and the first 236 evaluation characters
// (1028 characters). The repo ships the same lists in
// datasets/splits/omniglot-vinyals/{train,val,test}.txt.
std::vector<std::string> omniglot_vinyals_split(const std::string& split);

// Reads the classes of `split` from a split file:
//  - JSON object {"train": [...], "val": [...], "test": [...]},
//  - JSON array [...] (the whole file is the one split),
//  - text, one name per line ('#' comments and blank lines skipped).
// Entries are "Alphabet/character" names (Omniglot) or class names
// (MiniImageNet wnids). Throws metanas::Error naming the path.
std::vector<std::string> read_split_file(const std::string& path, const std::string& split);

}  // namespace metanas::data
