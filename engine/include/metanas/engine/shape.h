// Shape: the dimensions of a contiguous row-major tensor (NCHW for images).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace metanas {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  int ndim() const { return static_cast<int>(dims_.size()); }
  // Negative indices count from the end, as in Python.
  int64_t operator[](int i) const { return dims_.at(i < 0 ? i + ndim() : i); }
  int64_t& operator[](int i) { return dims_.at(i < 0 ? i + ndim() : i); }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims_) n *= d;
    return n;
  }
  const std::vector<int64_t>& dims() const { return dims_; }
  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }
  // "[20, 28, 14, 14]"
  std::string str() const {
    std::string s = "[";
    for (size_t i = 0; i < dims_.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[i]);
    }
    return s + "]";
  }

 private:
  std::vector<int64_t> dims_;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

}  // namespace metanas
