// Orthogonal initialisation (torch.nn.init.orthogonal_ semantics).
#include "metanas/meta/rl/orthogonal.h"

#include <cmath>

#include "metanas/engine/error.h"

namespace metanas::meta::rl {

std::vector<float> orthogonal(int64_t rows, int64_t cols, float gain, Rng& rng) {
  MN_CHECK(rows > 0 && cols > 0, "orthogonal: needs a non-empty matrix, got [", rows, ", ", cols, "]");
  // Work on the tall orientation: n vectors of length m, m >= n.
  const bool tall = rows >= cols;
  const int64_t m = tall ? rows : cols, n = tall ? cols : rows;
  std::vector<double> q(static_cast<size_t>(m * n));  // vector k at q[k * m ...]
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const double v = rng.normal();
      if (tall)
        q[j * m + i] = v;  // column j
      else
        q[i * m + j] = v;  // row i
    }
  for (int64_t k = 0; k < n; ++k) {
    double* vk = &q[k * m];
    for (int64_t p = 0; p < k; ++p) {
      const double* vp = &q[p * m];
      double dot = 0;
      for (int64_t t = 0; t < m; ++t) dot += vp[t] * vk[t];
      for (int64_t t = 0; t < m; ++t) vk[t] -= dot * vp[t];
    }
    double nrm = 0;
    for (int64_t t = 0; t < m; ++t) nrm += vk[t] * vk[t];
    nrm = std::sqrt(nrm);
    MN_CHECK(nrm > 1e-12, "orthogonal: degenerate draw");
    for (int64_t t = 0; t < m; ++t) vk[t] /= nrm;
  }
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      out[i * cols + j] = static_cast<float>(gain * (tall ? q[j * m + i] : q[i * m + j]));
  return out;
}

}  // namespace metanas::meta::rl
