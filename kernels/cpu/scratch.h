// A grow-only float buffer per thread and slot, kept between kernel calls and
// not cleared (every user writes what it reads). A fresh zeroed vector per call
// cost a memset and, above malloc's mmap threshold, a page fault per 4 KiB of
// up to a few MB per convolution (8% of a 4-conv task). Two buffers that are
// live at the same time on one thread need different slots.
#pragma once
#include <cstdint>
#include <vector>

namespace metanas::kernels::cpu {

enum class ScratchSlot { items, partials, pool, sums };

// Outside the ISA namespaces: one baseline copy of this inline function and of
// its buffers serves every kernel variant.
template <ScratchSlot S>
float* thread_scratch(int64_t floats) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < floats) {
    std::vector<float>().swap(buf);
    buf.resize(static_cast<size_t>(floats));
  }
  return buf.data();
}

}  // namespace metanas::kernels::cpu
