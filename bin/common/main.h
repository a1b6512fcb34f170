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

// Sets the OpenMP thread count (OpenBLAS's OpenMP build follows it) when
// n > 0; returns the count in effect.
inline int set_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
  return omp_get_max_threads();
}

// Runs body(); usage errors exit 2 with a hint to --help, library errors and
// other exceptions exit 1, each with one line naming the program.
inline int run_main(const char* program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: error: %s\n(run '%s --help' for the options)\n", program, e.what(), program);
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: unexpected error: %s\n", program, e.what());
    return 1;
  }
}

}  // namespace metanas::cli
