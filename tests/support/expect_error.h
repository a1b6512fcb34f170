// expect_error(fn, parts): fn must throw metanas::Error whose message holds
// every one of parts (the op's name, the offending shapes, ...).
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "metanas/engine/error.h"

namespace metanas::testing {

template <typename Fn>
void expect_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    FAIL("no throw");
  } catch (const Error& e) {
    const std::string m = e.what();
    INFO(m);
    for (const auto& p : parts) REQUIRE(m.find(p) != std::string::npos);
  }
}

}  // namespace metanas::testing
