// The programs' side of distributed runs (docs/distributed.md): errors on any
// rank end every rank with a message naming the rank, and the hash every
// rank must agree on (binary + resolved configuration).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
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

// Test-only fault injection (docs/distributed.md, "Checks and failures"):
// METANAS_TEST_FAIL=R:I makes rank R throw an error as it starts
// meta-iteration I, so the tests can see how the other ranks end and that
// the last checkpoint stays intact. Unset (always, outside tests) it does
// nothing.
inline void inject_test_fault(int rank, int64_t iteration) {
  const char* v = std::getenv("METANAS_TEST_FAIL");
  if (!v || !*v) return;
  int r = -1;
  long long it = -1;
  MN_CHECK(std::sscanf(v, "%d:%lld", &r, &it) == 2, "METANAS_TEST_FAIL='", v, "': expected RANK:ITERATION");
  MN_CHECK(!(r == rank && it == iteration), "fault injected by METANAS_TEST_FAIL=", v, " (rank ", rank,
           ", meta-iteration ", iteration, ")");
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
  } catch (const meta::dist::MismatchError& e) {
    // Every rank saw the same gather and throws this: rank 0 says why, all
    // return (none waits in a collective), nothing has been written.
    if (meta::dist::world()->rank() == 0) {
      std::fprintf(stderr, "%s: error: %s\n%s: the ranks disagree; nothing was run or written\n", program, e.what(),
                   program);
      std::fflush(stderr);
    }
    return 2;
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
  std::fprintf(stderr,
               "%s (rank %d of %d): %s\n%s: rank %d stopped with this error; ending all ranks (the last checkpoint "
               "is kept)\n",
               program, rank, size, msg.c_str(), program, rank);
  std::fflush(stderr);
  if (comm && size > 1) comm->abort(status);
  return status;
}

}  // namespace metanas::cli
