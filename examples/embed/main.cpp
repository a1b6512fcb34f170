// embed_demo: trains a two-layer classifier (linear-relu-linear) with metanas
// on generated 2-D data, checkpoints it, and exits non-zero unless the loss
// fell well below its start. Usage: embed_demo [cpu|cuda] (default: cpu).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <metanas/metanas.h>

using namespace metanas;

namespace {

// Points uniform in [-3, 3]^2, labelled by ring (radius < 1.2, < 2.2, else):
// no linear model separates them, a small hidden layer does.
void make_rings(int n, Rng& rng, std::vector<float>& xs, std::vector<int32_t>& ys) {
  xs.resize(2 * static_cast<size_t>(n));
  ys.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const float a = 6.f * rng.uniform() - 3.f, b = 6.f * rng.uniform() - 3.f;
    const float r = std::sqrt(a * a + b * b);
    xs[2 * i] = a;
    xs[2 * i + 1] = b;
    ys[i] = r < 1.2f ? 0 : (r < 2.2f ? 1 : 2);
  }
}

Tensor forward(ParamSet& ps, const Tensor& x) {
  Tensor h = relu(linear(x, ps.get("fc1.w"), ps.get("fc1.b")));
  return linear(h, ps.get("fc2.w"), ps.get("fc2.b"));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Device dev = resolve_device(parse_device(argc > 1 ? argv[1] : "cpu"));
    const int n = 512, hidden = 64, classes = 3;

    ParamSet ps(dev);
    ps.add("fc1.w", {hidden, 2});
    ps.add("fc1.b", {hidden});
    ps.add("fc2.w", {classes, hidden});
    ps.add("fc2.b", {classes});
    ps.finalize();
    Rng rng(2024);
    // He-style initialisation for the relu layer; biases start at zero.
    ps.get("fc1.w").copy_(Tensor::randn({hidden, 2}, rng, std::sqrt(2.f / 2.f)));
    ps.get("fc2.w").copy_(Tensor::randn({classes, hidden}, rng, std::sqrt(1.f / hidden)));

    std::vector<float> xs;
    std::vector<int32_t> ys;
    make_rings(n, rng, xs, ys);
    const Tensor x = Tensor::from_vector(xs, {n, 2}, dev);
    const Tensor y = Tensor::from_ints(ys, {n}, dev);

    Adam opt(ps, 0.02f);
    opt.max_grad_norm = 5.f;
    float first = 0.f, last = 0.f;
    for (int step = 0; step < 400; ++step) {
      Tensor loss = cross_entropy(forward(ps, x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      last = loss.item();
      if (step == 0) first = last;
      if (step % 100 == 0) std::printf("step %3d  loss %.4f\n", step, last);
    }
    float acc = 0.f;
    {
      NoGradGuard no_grad;
      Tensor logits = forward(ps, x);
      last = cross_entropy(logits, y).item();
      acc = accuracy(logits, y).item();
    }
    std::printf("final     loss %.4f (start %.4f), accuracy %.3f on %s\n", last, first, acc,
                device_name(dev));

    // Checkpoint round trip: a fresh set loaded from disk gives the same loss.
    const std::string path = (std::filesystem::temp_directory_path() / "metanas_embed_demo.ckpt").string();
    Checkpoint ck;
    ck.put_params("model.", ps);
    opt.save_state(ck, "opt.");
    ck.set_metadata_json(R"({"example": "embed_demo", "steps": 400})");
    ck.save(path);
    ParamSet restored = ps.clone();
    restored.scale_(0.f);
    Checkpoint::load(path).get_params("model.", restored);
    std::filesystem::remove(path);
    float reloaded;
    {
      NoGradGuard no_grad;
      reloaded = cross_entropy(forward(restored, x), y).item();
    }

    if (!(last < 0.3f * first) || !(acc > 0.9f)) {
      std::fprintf(stderr, "embed_demo: FAILED: loss %.4f (start %.4f), accuracy %.3f: did not learn\n", last,
                   first, acc);
      return 1;
    }
    if (reloaded != last) {
      std::fprintf(stderr, "embed_demo: FAILED: reloaded model gives loss %.6f, expected %.6f\n", reloaded, last);
      return 1;
    }
    std::printf("embed_demo: OK\n");
    return 0;
  } catch (const metanas::Error& e) {
    std::fprintf(stderr, "embed_demo: %s\n", e.what());
    return 2;
  }
}
