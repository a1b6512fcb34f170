// Orthogonal initialisation as torch.nn.init.orthogonal_: a [rows, cols]
// matrix with orthonormal rows (rows <= cols) or columns (rows > cols), drawn
// from a standard normal and orthogonalised (QR with a positive diagonal of
// R, here modified Gram-Schmidt in double precision), times gain.
#pragma once
#include <cstdint>
#include <vector>

#include "metanas/engine/random.h"

namespace metanas::meta::rl {

// Row-major [rows, cols].
std::vector<float> orthogonal(int64_t rows, int64_t cols, float gain, Rng& rng);

}  // namespace metanas::meta::rl
