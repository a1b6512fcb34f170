// IDX files (LeCun's MNIST format), gzip-compressed or plain: a 4-byte magic
// (0, 0, type, number of dimensions), big-endian uint32 dimensions, then the
// values. Only unsigned bytes (type 0x08) are read: that is what MNIST's
// image and label files hold.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace metanas::data {

struct IdxArray {
  std::vector<uint32_t> dims;
  std::vector<uint8_t> values;  // prod(dims) bytes, row-major
};

// Reads an IDX file; .gz content is recognised by its magic bytes, not the
// name. Throws metanas::Error naming the file for a missing or unreadable
// file, corrupt gzip data, a wrong magic, an unsupported type, or a size
// that disagrees with the dimensions (truncated file, trailing bytes).
IdxArray read_idx(const std::string& path);

// An MNIST-style pair: images [count, rows, cols] and labels [count].
struct IdxDigits {
  int rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols
  std::vector<uint8_t> labels;  // count
  int64_t count() const { return int64_t(labels.size()); }
};

// Reads an image file and its label file and checks that they agree
// (3 and 1 dimensions, the same count, labels 0..9).
IdxDigits read_idx_digits(const std::string& images, const std::string& labels);

// Appends `more` to `all` (same image size required); for combining MNIST's
// training and test files.
void append_digits(IdxDigits& all, const IdxDigits& more, const std::string& what);

}  // namespace metanas::data
