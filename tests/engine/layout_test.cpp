// Layout ops: concat_channels, slice_channels, crop2d, flatten — forward
// against index-by-index references, finite-difference gradients, errors.
#include <catch2/catch.hpp>

#include <functional>
#include <string>

#include "metanas/engine/error.h"
#include "metanas/engine/ops.h"
#include "support/expect_error.h"
#include "metanas/engine/random.h"
#include "support/gradcheck.h"

using namespace metanas;
using metanas::testing::expect_error;
using metanas::testing::grad_check;

namespace {

// Element [n, c, h, w] of a host copy of an NCHW tensor.
float at(const std::vector<float>& v, const Shape& s, int64_t n, int64_t c, int64_t h, int64_t w) {
  return v[static_cast<size_t>(((n * s[1] + c) * s[2] + h) * s[3] + w)];
}

void require_all_grads(const metanas::testing::OpFn& f, const std::vector<Tensor>& in) {
  for (int i = 0; i < static_cast<int>(in.size()); ++i) {
    auto r = grad_check(f, in, i);
    INFO("input " << i << ": " << r.message);
    REQUIRE(r.ok);
  }
}

}  // namespace

TEST_CASE("concat_channels stacks inputs along channels, gradients split back", "[layout]") {
  Rng rng(40);
  Tensor a = Tensor::randn({2, 3, 4, 5}, rng), b = Tensor::randn({2, 1, 4, 5}, rng),
         c = Tensor::randn({2, 2, 4, 5}, rng);
  Tensor y = concat_channels({a, b, c});
  REQUIRE(y.shape() == Shape{2, 6, 4, 5});
  auto yv = y.to_vector();
  const std::vector<Tensor> parts{a, b, c};
  for (int64_t n = 0; n < 2; ++n) {
    int64_t c0 = 0;
    for (const auto& p : parts) {
      auto pv = p.to_vector();
      for (int64_t ch = 0; ch < p.dim(1); ++ch)
        for (int64_t h = 0; h < 4; ++h)
          for (int64_t w = 0; w < 5; ++w)
            REQUIRE(at(yv, y.shape(), n, c0 + ch, h, w) == at(pv, p.shape(), n, ch, h, w));
      c0 += p.dim(1);
    }
  }
  require_all_grads([](const std::vector<Tensor>& t) { return concat_channels(t); }, {a, b, c});
  // The same tensor twice: both slices' gradients add up.
  Tensor x = a.clone().set_requires_grad();
  concat_channels({x, x}).backward(Tensor::ones({2, 6, 4, 5}));
  for (float g : x.grad().to_vector()) REQUIRE(g == 2.f);
}

TEST_CASE("slice_channels takes a channel range and its gradient is zero elsewhere", "[layout]") {
  Rng rng(41);
  Tensor x = Tensor::randn({2, 5, 3, 4}, rng);
  Tensor y = slice_channels(x, 1, 3);
  REQUIRE(y.shape() == Shape{2, 3, 3, 4});
  auto xv = x.to_vector(), yv = y.to_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t w = 0; w < 4; ++w)
          REQUIRE(at(yv, y.shape(), n, c, h, w) == at(xv, x.shape(), n, 1 + c, h, w));
  require_all_grads([](const std::vector<Tensor>& t) { return slice_channels(t[0], 1, 3); }, {x});
  Tensor xl = x.clone().set_requires_grad();
  sum(slice_channels(xl, 4, 1)).backward();
  auto g = xl.grad().to_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 5; ++c)
      for (int64_t h = 0; h < 3; ++h)
        for (int64_t w = 0; w < 4; ++w) REQUIRE(at(g, x.shape(), n, c, h, w) == (c == 4 ? 1.f : 0.f));
}

TEST_CASE("crop2d takes a spatial window and its gradient is zero outside it", "[layout]") {
  Rng rng(42);
  Tensor x = Tensor::randn({2, 3, 6, 7}, rng);
  Tensor y = crop2d(x, 1, 2, 4, 3);
  REQUIRE(y.shape() == Shape{2, 3, 4, 3});
  auto xv = x.to_vector(), yv = y.to_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t w = 0; w < 3; ++w)
          REQUIRE(at(yv, y.shape(), n, c, h, w) == at(xv, x.shape(), n, c, 1 + h, 2 + w));
  require_all_grads([](const std::vector<Tensor>& t) { return crop2d(t[0], 1, 2, 4, 3); }, {x});
  // Full-size crop is a copy.
  REQUIRE(crop2d(x, 0, 0, 6, 7).to_vector() == xv);
  Tensor xl = x.clone().set_requires_grad();
  sum(crop2d(xl, 5, 6, 1, 1)).backward();
  auto g = xl.grad().to_vector();
  float total = 0;
  for (float v : g) total += v;
  REQUIRE(total == 6.f);  // one pixel per (n, c)
  REQUIRE(at(g, x.shape(), 1, 2, 5, 6) == 1.f);
}

TEST_CASE("flatten reshapes to N x rest without copying and is differentiable", "[layout]") {
  Rng rng(43);
  Tensor x = Tensor::randn({3, 2, 2, 5}, rng);
  Tensor y = flatten(x);
  REQUIRE(y.shape() == Shape{3, 20});
  REQUIRE(y.to_vector() == x.to_vector());
  REQUIRE(flatten(Tensor::zeros({4})).shape() == Shape{4, 1});
  require_all_grads([](const std::vector<Tensor>& t) { return mul(flatten(t[0]), flatten(t[0])); },
                    {x});
}

TEST_CASE("layout ops reject bad shapes and ranges with clear errors", "[layout]") {
  Tensor x = Tensor::zeros({2, 4, 5, 6});
  expect_error([&] { concat_channels({x, Tensor::zeros({2, 4, 5, 7})}); },
               {"concat_channels", "[2, 4, 5, 6]", "[2, 4, 5, 7]"});
  expect_error([&] { concat_channels({x, Tensor::zeros({3, 4, 5, 6})}); }, {"concat_channels"});
  expect_error([&] { concat_channels({x, Tensor::zeros({2, 4, 30})}); }, {"concat_channels", "4-D"});
  expect_error([&] { concat_channels({}); }, {"concat_channels"});
  expect_error([&] { slice_channels(x, 3, 2); }, {"slice_channels", "[3, 5)", "[2, 4, 5, 6]"});
  expect_error([&] { slice_channels(x, -1, 2); }, {"slice_channels"});
  expect_error([&] { slice_channels(x, 0, 0); }, {"slice_channels"});
  expect_error([&] { slice_channels(Tensor::zeros({2, 4}), 0, 1); }, {"slice_channels", "4-D"});
  expect_error([&] { crop2d(x, 2, 0, 4, 6); }, {"crop2d", "[2, 6)", "[2, 4, 5, 6]"});
  expect_error([&] { crop2d(x, 0, 1, 5, 6); }, {"crop2d", "[1, 7)"});
  expect_error([&] { crop2d(x, 0, 0, 0, 6); }, {"crop2d"});
  expect_error([&] { crop2d(x, -1, 0, 2, 2); }, {"crop2d"});
  expect_error([&] { flatten(Tensor::scalar(1.f)); }, {"flatten"});
  expect_error([&] { flatten(Tensor::from_ints({1, 2}, {2})); }, {"flatten", "int32"});
}
