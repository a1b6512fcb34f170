// The programs' side of distributed runs (docs/distributed.md): errors on any
// rank end every rank with a message naming the rank, and the hash every
// rank must agree on (binary + resolved configuration).
#pragma once
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "main.h"
#include "metanas/meta/dist/communicator.h"

namespace metanas::cli {

// FNV-1a 64 of the running executable's bytes: ranks built from different
// sources (or a stale binary on one host) disagree on it.
inline std::string binary_hash() {
  std::ifstream f("/proc/self/exe", std::ios::binary);
  uint64_t h = 1469598103934665603ull;
  char buf[1 << 16];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) {
    for (std::streamsize i = 0; i < f.gcount(); ++i) h = (h ^ static_cast<uint8_t>(buf[i])) * 1099511628211ull;
    if (!f) break;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

// run_main, and in an MPI job: an error on this rank prints one line naming
// the rank, then ends every rank (MPI_Abort) so that none waits forever in a
// collective; checkpoints are written atomically by rank 0, so the last one
// stays intact.
inline int run_main_ranks(const char* program, const std::function<int()>& body) {
  if (!meta::dist::launched_by_mpi()) return run_main(program, body);
  std::string msg;
  int status = 0;
  try {
    return body();
  } catch (const UsageError& e) {
    msg = std::string("error: ") + e.what(), status = 2;
  } catch (const Error& e) {
    msg = std::string("error: ") + e.what(), status = 1;
  } catch (const std::exception& e) {
    msg = std::string("unexpected error: ") + e.what(), status = 1;
  }
  int rank = -1, size = 0;
  std::shared_ptr<meta::dist::Communicator> comm;
  try {
    comm = meta::dist::world();
    rank = comm->rank(), size = comm->size();
  } catch (const std::exception&) {
  }
  std::fprintf(stderr, "%s (rank %d of %d): %s\n%s: rank %d failed; stopping all ranks (the last checkpoint is kept)\n",
               program, rank, size, msg.c_str(), program, rank);
  std::fflush(stderr);
  if (comm && size > 1) comm->abort(status);
  return status;
}

}  // namespace metanas::cli
