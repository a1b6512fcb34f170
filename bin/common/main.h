// The programs' main() wrapper (errors -> one clear message and a non-zero
// exit status) and thread-count control.
#pragma once
#include <omp.h>

#include <cstdio>
#include <exception>
#include <functional>
#include <string>

#include "args.h"
#include "metanas/engine/error.h"

namespace metanas::cli {

// At most this many threads per core: more only thrashes, and absurd counts
// crash inside the OpenMP runtime when it creates the pool.
constexpr int kMaxThreadsPerCore = 4;

// Sets the OpenMP thread count (OpenBLAS's OpenMP build follows it) when
// n > 0; returns the count in effect. A count beyond what the machine can use
// is a usage error naming the bound.
inline int set_threads(int n) {
  const int cores = omp_get_num_procs();
  MN_USAGE_CHECK(n >= 0, "run.threads (--threads) must be >= 0 (0 = OMP_NUM_THREADS or all cores), got ", n);
  MN_USAGE_CHECK(n <= kMaxThreadsPerCore * cores, "run.threads (--threads) ", n,
                 " is more than this machine can use: it has ", cores, " cores (at most ",
                 kMaxThreadsPerCore * cores, " threads)");
  if (n > 0) omp_set_num_threads(n);
  return omp_get_max_threads();
}

// Runs body(); usage errors exit 2 with a hint to --help, library errors and
// other exceptions exit `error_status` (1), each with one line naming the
// program.
inline int run_main(const char* program, const std::function<int()>& body, int error_status = 1) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: error: %s\n(run '%s --help' for the options)\n", program, e.what(), program);
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    return error_status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: unexpected error: %s\n", program, e.what());
    return error_status;
  }
}

}  // namespace metanas::cli
