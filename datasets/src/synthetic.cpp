// Procedural handwriting: alphabet styles -> class strokes (cubic Beziers) ->
// per-drawer jitter + affine -> antialiased rasterisation (coverage from the
// distance to each flattened segment, touched only inside its bounding box).
#include "metanas/datasets/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "metanas/datasets/splits.h"
#include "metanas/engine/error.h"
#include "metanas/engine/random.h"

namespace metanas::data {

namespace {

struct Pt {
  float x, y;
};
struct Stroke {
  Pt p[4];  // cubic Bezier control points, unit square coordinates
};
struct Style {
  float width;       // stroke width as a fraction of the image size
  float curviness;   // perpendicular spread of the inner control points
  float length_lo, length_hi;
  float slant;       // shear
  float straight_p;  // probability of a straight stroke
  float connect_p;   // probability a stroke starts where the last ended
  int strokes_lo, strokes_hi;
};
struct Glyph {
  std::vector<Stroke> strokes;
  float width;
};

uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
// An independent generator per (seed, alphabet, class, drawer): draws do not
// depend on generation order, so OpenMP and subsets give identical images.
Rng rng_for(uint64_t seed, int64_t a, int64_t c = -1, int64_t d = -1) {
  uint64_t h = mix(seed ^ 0x5EED5EED5EEDull);
  h = mix(h ^ uint64_t(a + 1));
  h = mix(h ^ (uint64_t(c + 2) << 20));
  h = mix(h ^ (uint64_t(d + 3) << 40));
  return Rng(h);
}
float uni(Rng& r, float lo, float hi) { return lo + (hi - lo) * r.uniform(); }
float clampf(float v, float lo, float hi) { return std::min(hi, std::max(lo, v)); }

Style make_style(uint64_t seed, int a) {
  Rng r = rng_for(seed, a);
  Style s;
  s.width = uni(r, 0.035f, 0.065f);
  s.curviness = uni(r, 0.05f, 0.45f);
  s.length_lo = uni(r, 0.25f, 0.4f);
  s.length_hi = s.length_lo + uni(r, 0.1f, 0.3f);
  s.slant = uni(r, -0.25f, 0.25f);
  s.straight_p = uni(r, 0.f, 0.6f);
  s.connect_p = uni(r, 0.2f, 0.8f);
  s.strokes_lo = 1 + int(r.below(2));                      // 1..2
  s.strokes_hi = std::min(4, s.strokes_lo + 1 + int(r.below(3)));  // up to 4
  return s;
}

Pt bezier(const Stroke& s, float t) {
  const float u = 1 - t, a = u * u * u, b = 3 * u * u * t, c = 3 * u * t * t, d = t * t * t;
  return {a * s.p[0].x + b * s.p[1].x + c * s.p[2].x + d * s.p[3].x,
          a * s.p[0].y + b * s.p[1].y + c * s.p[2].y + d * s.p[3].y};
}

Glyph make_glyph(const Style& s, uint64_t seed, int a, int c) {
  Rng r = rng_for(seed, a, c);
  Glyph g;
  g.width = s.width * uni(r, 0.9f, 1.1f);
  const int n = s.strokes_lo + int(r.below(uint64_t(s.strokes_hi - s.strokes_lo + 1)));
  Pt pen{uni(r, 0.25f, 0.75f), uni(r, 0.25f, 0.75f)};
  for (int k = 0; k < n; ++k) {
    Stroke st;
    const bool connect = k > 0 && r.uniform() < s.connect_p;
    const Pt p0 = connect ? pen : Pt{uni(r, 0.2f, 0.8f), uni(r, 0.2f, 0.8f)};
    const float ang = uni(r, 0.f, 6.2831853f);
    const float len = uni(r, s.length_lo, s.length_hi);
    Pt p3{clampf(p0.x + len * std::cos(ang), 0.12f, 0.88f),
          clampf(p0.y + len * std::sin(ang), 0.12f, 0.88f)};
    const float dx = p3.x - p0.x, dy = p3.y - p0.y;
    const bool straight = r.uniform() < s.straight_p;
    const float b1 = straight ? 0.f : uni(r, -1.f, 1.f) * s.curviness * 1.6f;
    const float b2 = straight ? 0.f : uni(r, -1.f, 1.f) * s.curviness * 1.6f;
    // Inner points at 1/3 and 2/3 along the chord, pushed off it sideways.
    st.p[0] = p0;
    st.p[1] = {clampf(p0.x + dx / 3 - dy * b1, 0.05f, 0.95f), clampf(p0.y + dy / 3 + dx * b1, 0.05f, 0.95f)};
    st.p[2] = {clampf(p0.x + 2 * dx / 3 - dy * b2, 0.05f, 0.95f),
               clampf(p0.y + 2 * dy / 3 + dx * b2, 0.05f, 0.95f)};
    st.p[3] = p3;
    g.strokes.push_back(st);
    pen = p3;
  }
  // Centre the glyph and scale it to span ~70% of the box (less for glyphs
  // that are tiny to begin with), as a person writes into a cell.
  float x0 = 1e9f, x1 = -1e9f, y0 = 1e9f, y1 = -1e9f;
  for (const auto& st : g.strokes)
    for (int k = 0; k <= 16; ++k) {
      const Pt p = bezier(st, k / 16.f);
      x0 = std::min(x0, p.x), x1 = std::max(x1, p.x), y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
    }
  const float extent = std::max(std::max(x1 - x0, y1 - y0), 1e-3f);
  const float scale = std::min(0.7f / extent, 4.f);
  const float cx = 0.5f * (x0 + x1), cy = 0.5f * (y0 + y1);
  for (auto& st : g.strokes)
    for (auto& p : st.p) p = {0.5f + (p.x - cx) * scale, 0.5f + (p.y - cy) * scale};
  return g;
}


// One drawer's rendition of a glyph into `out` (size*size bytes).
void render(const Glyph& g, const Style& s, uint64_t seed, int a, int c, int d, int size,
            bool invert, uint8_t* out) {
  Rng r = rng_for(seed, a, c, d);
  const float width = g.width * uni(r, 0.8f, 1.25f);
  const float rot = 0.08f * r.normal();
  const float sx = uni(r, 0.88f, 1.08f), sy = uni(r, 0.88f, 1.08f);
  const float shear = s.slant * 0.5f + 0.06f * r.normal();
  const float tx = 0.035f * r.normal(), ty = 0.035f * r.normal();
  const float cr = std::cos(rot), sr = std::sin(rot);
  auto affine = [&](Pt p) {  // about the centre: rotate . shear . scale
    float x = (p.x - 0.5f) * sx, y = (p.y - 0.5f) * sy;
    x += shear * y;
    return Pt{0.5f + tx + cr * x - sr * y, 0.5f + ty + sr * x + cr * y};
  };
  std::vector<float> cov(size_t(size) * size, 0.f);
  const float radius = 0.5f * width * size;  // in pixels
  constexpr int kSegments = 16;
  for (const Stroke& base : g.strokes) {
    Stroke st = base;
    for (auto& p : st.p) {
      p.x += 0.022f * r.normal();
      p.y += 0.022f * r.normal();
    }
    Pt prev = affine(bezier(st, 0.f));
    prev = {prev.x * size, prev.y * size};
    for (int k = 1; k <= kSegments; ++k) {
      Pt cur = affine(bezier(st, float(k) / kSegments));
      cur = {cur.x * size, cur.y * size};
      const float ex = cur.x - prev.x, ey = cur.y - prev.y;
      const float len2 = std::max(ex * ex + ey * ey, 1e-12f);
      const float reach = radius + 1.f;
      const int x0 = std::max(0, int(std::floor(std::min(prev.x, cur.x) - reach)));
      const int x1 = std::min(size - 1, int(std::ceil(std::max(prev.x, cur.x) + reach)));
      const int y0 = std::max(0, int(std::floor(std::min(prev.y, cur.y) - reach)));
      const int y1 = std::min(size - 1, int(std::ceil(std::max(prev.y, cur.y) + reach)));
      for (int y = y0; y <= y1; ++y)
        for (int x = x0; x <= x1; ++x) {
          const float px = x + 0.5f - prev.x, py = y + 0.5f - prev.y;
          const float t = clampf((px * ex + py * ey) / len2, 0.f, 1.f);
          const float qx = px - t * ex, qy = py - t * ey;
          const float dist = std::sqrt(qx * qx + qy * qy);
          // Box-filtered coverage of a pen of this radius: 1 inside, linear
          // ramp over one pixel at the edge.
          const float v = clampf(radius + 0.5f - dist, 0.f, 1.f);
          float& cv = cov[size_t(y) * size + x];
          cv = std::max(cv, v);
        }
      prev = cur;
    }
  }
  for (size_t i = 0; i < cov.size(); ++i) {
    const float ink = cov[i];
    const float v = invert ? ink : 1.f - ink;
    out[i] = uint8_t(std::lround(v * 255.f));
  }
}

void check_options(const SyntheticOptions& o) {
  MN_CHECK(o.num_alphabets >= 1 && o.classes_per_alphabet >= 1 && o.drawers >= 1,
           "synthetic: need at least 1 alphabet, class and drawer; got ", o.num_alphabets,
           " alphabets, ", o.classes_per_alphabet, " classes per alphabet, ", o.drawers, " drawers");
  MN_CHECK(o.size >= 4 && o.size <= 4096, "synthetic: image size must be 4..4096, got ", o.size);
  MN_CHECK(int64_t(o.num_alphabets) * o.classes_per_alphabet <= 10000000,
           "synthetic: too many classes (", int64_t(o.num_alphabets) * o.classes_per_alphabet, ")");
}

}  // namespace

Dataset make_synthetic(const SyntheticOptions& o) { return make_synthetic(o, 0, o.num_alphabets); }

Dataset make_synthetic(const SyntheticOptions& o, int first, int count) {
  check_options(o);
  MN_CHECK(first >= 0 && count >= 1 && first + count <= o.num_alphabets, "synthetic: alphabets ",
           first, "..", first + count - 1, " requested, but there are ", o.num_alphabets);
  const int classes = count * o.classes_per_alphabet;
  std::vector<Style> styles;
  std::vector<Glyph> glyphs;
  for (int a = first; a < first + count; ++a) {
    styles.push_back(make_style(o.seed, a));
    for (int c = 0; c < o.classes_per_alphabet; ++c) glyphs.push_back(make_glyph(styles.back(), o.seed, a, c));
  }
  const int64_t per = int64_t(o.size) * o.size;
  const int64_t n = int64_t(classes) * o.drawers;
  std::vector<uint8_t> bytes(size_t(n * per));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const int cls = int(i / o.drawers), d = int(i % o.drawers);
    const int a_local = cls / o.classes_per_alphabet, c = cls % o.classes_per_alphabet;
    render(glyphs[cls], styles[a_local], o.seed, first + a_local, c, d, o.size, o.invert,
           bytes.data() + i * per);
  }
  std::vector<ClassEntry> entries;
  for (int cls = 0; cls < classes; ++cls) {
    char name[64];
    std::snprintf(name, sizeof name, "Alphabet_%02d/character%02d",
                  first + cls / o.classes_per_alphabet + 1, cls % o.classes_per_alphabet + 1);
    entries.push_back(ClassEntry{name, int64_t(cls) * o.drawers, o.drawers, 0});
  }
  Dataset ds(1, o.size, o.size, make_pixel_buffer(std::move(bytes)), std::move(entries));
  ds.set_provenance(str_cat("synthetic (seed ", o.seed, ", alphabets ", first + 1, "..",
                            first + count, " of ", o.num_alphabets, ", ", o.size, "x", o.size, ")"));
  return ds;
}

std::pair<int, int> synthetic_split_alphabets(const SyntheticOptions& o, const std::string& split_in) {
  const std::string split = canonical_split(split_in);
  const int n = o.num_alphabets;
  MN_CHECK(n >= 3, "synthetic: train/val/test splits need at least 3 alphabets, got ", n);
  const int n_test = std::max(1, int(std::lround(0.3 * n)));
  const int n_val = std::max(1, int(std::lround(0.1 * n)));
  const int n_train = n - n_test - n_val;
  if (split == "train") return {0, n_train};
  if (split == "val") return {n_train, n_val};
  return {n_train + n_val, n_test};
}

Dataset make_synthetic_split(const SyntheticOptions& o, const std::string& split) {
  const auto [first, count] = synthetic_split_alphabets(o, split);
  Dataset ds = make_synthetic(o, first, count);
  ds.set_provenance(ds.provenance() + ", split " + canonical_split(split));
  return ds;
}

Image contact_sheet(const Dataset& ds, int rows, int cols) {
  MN_CHECK(!ds.empty(), "contact_sheet: empty dataset");
  MN_CHECK(rows >= 1 && cols >= 1, "contact_sheet: rows and cols must be positive");
  rows = std::min(rows, ds.num_classes());
  int max_cols = 0;
  for (int c = 0; c < ds.num_classes(); ++c) max_cols = std::max(max_cols, ds.class_size(c));
  cols = std::min(cols, max_cols);
  constexpr int kGap = 2;
  const int ch = ds.channels(), h = ds.height(), w = ds.width();
  Image sheet;
  sheet.channels = ch;
  sheet.width = cols * (w + kGap) + kGap;
  sheet.height = rows * (h + kGap) + kGap;
  sheet.pixels.assign(size_t(sheet.width) * sheet.height * ch, 128);
  std::vector<uint8_t> img(size_t(ds.image_numel()));
  for (int r = 0; r < rows; ++r) {
    const int cls = int(int64_t(r) * ds.num_classes() / rows);
    for (int k = 0; k < std::min(cols, ds.class_size(cls)); ++k) {
      ds.read_image(cls, k, img.data());
      const int oy = kGap + r * (h + kGap), ox = kGap + k * (w + kGap);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          for (int c = 0; c < ch; ++c)
            sheet.pixels[(size_t(oy + y) * sheet.width + ox + x) * ch + c] =
                img[(size_t(c) * h + y) * w + x];
    }
  }
  return sheet;
}

}  // namespace metanas::data
