// TripleMNIST: numpy's RandomState shuffle and the published split, IDX
// parsing, the generator (pixel placement checked on the written PNGs
// against the hand-made digits), the loader, and their bad-input errors.
#include <catch2/catch.hpp>
#include <algorithm>
#include <random>
#include <set>
#include <sstream>

#include "fixtures.h"
#include "idx_fixtures.h"
#include "metanas/datasets/idx.h"
#include "metanas/datasets/loader.h"
#include "metanas/datasets/numpy_random.h"
#include "metanas/datasets/triple_mnist.h"
#include "metanas/datasets/triple_mnist_generator.h"
#include "metanas/engine/error.h"

using namespace metanas;
using namespace metanas::data;
using fixtures::TempDir;

namespace {

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// torchmeta's TripleMNIST val and test class lists, sorted, as computed by
//   python3 -c "import numpy as np; c = list(np.array(range(1000)));
//     np.random.RandomState(123).shuffle(c);
//     print(' '.join('%03d' % x for x in sorted(c[640:800])))"   (val; c[800:] for test)
// (numpy 2.4.6; identical to torchmeta's assets/triplemnist/{val,test}.json).
const char* kValSorted =
    "001 010 012 019 025 029 044 053 069 081 083 092 108 112 126 130 133 136 137 143 144 149 152 168 "
    "173 187 194 197 207 215 218 220 225 238 247 251 281 286 293 312 324 325 330 334 337 341 350 355 "
    "361 383 393 400 405 407 410 413 422 423 432 436 439 441 442 454 459 464 466 475 477 488 494 495 "
    "501 502 503 506 507 516 519 535 540 550 557 562 570 572 573 574 579 583 589 592 593 601 602 604 "
    "609 611 612 622 627 629 634 636 639 649 651 658 673 679 686 697 703 707 715 718 726 731 740 741 "
    "746 750 772 775 779 789 794 796 816 829 841 847 851 852 855 879 880 886 888 889 890 900 904 906 "
    "910 911 912 915 926 940 944 955 961 962 963 975 980 981 992 999 ";
const char* kTestSorted =
    "002 003 008 014 016 017 039 046 047 051 056 058 060 065 067 068 073 076 077 086 087 088 096 098 "
    "099 106 109 111 113 123 129 135 139 140 141 146 154 158 176 180 186 193 198 206 208 213 214 222 "
    "224 244 253 255 257 259 262 265 271 290 296 301 304 305 315 319 321 322 323 339 340 342 354 357 "
    "358 359 360 364 365 371 377 380 382 385 390 394 401 409 411 412 418 419 420 424 428 433 434 438 "
    "440 451 460 465 467 471 472 473 480 481 484 486 489 490 493 496 497 504 510 513 515 530 537 539 "
    "544 552 555 559 569 575 576 582 588 595 596 608 615 628 630 631 635 638 645 647 661 665 680 681 "
    "695 717 720 737 742 745 755 759 762 763 765 766 768 780 781 782 790 806 812 815 817 819 823 824 "
    "826 836 837 842 843 846 860 862 865 866 867 873 878 884 885 895 899 907 919 929 942 945 951 954 "
    "956 957 964 976 988 990 996 998 ";

TripleMnistGenOptions small_split(const std::string& out) {
  TripleMnistGenOptions o;
  o.out = out;
  o.images_per_class = 6;
  o.seed = 7;
  o.splits = {std::vector<std::string>{"012", "345", "678", "901"}, {"111", "999"}, {"000", "987"}};
  return o;
}

}  // namespace

TEST_CASE("numpy RandomState: MT19937 stream and shuffle match numpy", "[triplemnist][numpy]") {
  // The raw stream is MT19937 with init_genrand seeding, i.e. std::mt19937.
  NumpyRandomState a(123);
  std::mt19937 ref(123);
  for (int i = 0; i < 2000; ++i) REQUIRE(a.next_uint32() == ref());
  // python3 -c "import numpy as np; r = np.random.RandomState(5); a = list(range(10)); r.shuffle(a); print(a)"
  std::vector<int> v(10);
  for (int i = 0; i < 10; ++i) v[i] = i;
  NumpyRandomState(5).shuffle(v);
  CHECK(v == std::vector<int>{9, 5, 2, 4, 7, 1, 0, 8, 6, 3});
  // ... RandomState(0), list(range(20))
  std::vector<int> w(20);
  for (int i = 0; i < 20; ++i) w[i] = i;
  NumpyRandomState(0).shuffle(w);
  CHECK(w == std::vector<int>{18, 1, 19, 8, 10, 17, 6, 13, 4, 2, 5, 14, 9, 7, 16, 11, 3, 0, 15, 12});
}

TEST_CASE("triplemnist: torchmeta's split (RandomState(123) shuffle, 640 / 160 / 200)", "[triplemnist]") {
  const auto train = triple_mnist_split("train"), val = triple_mnist_split("val"), test = triple_mnist_split("test");
  REQUIRE(train.size() == 640);
  REQUIRE(val.size() == 160);
  REQUIRE(test.size() == 200);
  // Shuffle order: numpy's c[:12], c[640:646], c[800:806] of the command above.
  CHECK(std::vector<std::string>(train.begin(), train.begin() + 12) ==
        words("131 203 050 585 138 632 328 461 924 479 195 221"));
  CHECK(std::vector<std::string>(val.begin(), val.begin() + 6) == words("888 550 779 400 879 602"));
  CHECK(std::vector<std::string>(test.begin(), test.begin() + 6) == words("895 481 575 471 440 907"));
  auto sorted = [](std::vector<std::string> v) { std::sort(v.begin(), v.end()); return v; };
  CHECK(sorted(val) == words(kValSorted));
  CHECK(sorted(test) == words(kTestSorted));
  std::set<std::string> all(train.begin(), train.end());
  all.insert(val.begin(), val.end());
  all.insert(test.begin(), test.end());
  CHECK(all.size() == 1000);
  CHECK(triple_mnist_split("test", 124) != test);
}

TEST_CASE("idx: plain and gzip files, and their errors", "[triplemnist][idx]") {
  TempDir dir;
  const auto f = fixtures::make_digits({3, 1, 4}, 2);
  for (bool gz : {false, true}) {
    const auto [im, lb] = fixtures::write_digit_idx(dir / (gz ? "gz" : "plain"), f, gz);
    const IdxDigits d = read_idx_digits(im, lb);
    CHECK(d.rows == 28);
    CHECK(d.cols == 28);
    REQUIRE(d.count() == 6);
    CHECK(d.labels == std::vector<uint8_t>{3, 1, 4, 3, 1, 4});
    CHECK(d.pixels == f.images);
  }
  const auto im = fixtures::idx_bytes({6, 28, 28}, f.images);
  auto put = [&](const std::string& name, std::vector<uint8_t> b) {
    fixtures::write_bytes(dir / name, b);
    return dir / name;
  };
  std::vector<uint8_t> cut(im.begin(), im.end() - 100);
  REQUIRE_THROWS_WITH(read_idx(put("cut.idx", cut)),
                      Catch::Contains("cut.idx' is truncated") && Catch::Contains("need 4704 values, it holds 4604"));
  auto gz = fixtures::gzip_stored(im);
  gz.resize(gz.size() / 2);
  REQUIRE_THROWS_WITH(read_idx(put("cut.idx.gz", gz)), Catch::Contains("cut.idx.gz"));
  std::vector<uint8_t> short_header(im.begin(), im.begin() + 10);
  REQUIRE_THROWS_WITH(read_idx(put("hdr.idx", short_header)), Catch::Contains("hdr.idx' is truncated"));
  auto magic = im;
  magic[0] = 0x50;  // e.g. a PNG or text file
  REQUIRE_THROWS_WITH(read_idx(put("magic.idx", magic)), Catch::Contains("magic.idx': wrong magic"));
  auto type = im;
  type[2] = 0x0D;  // float
  REQUIRE_THROWS_WITH(read_idx(put("type.idx", type)), Catch::Contains("value type 13 is not supported"));
  auto extra = im;
  extra.push_back(0);
  REQUIRE_THROWS_WITH(read_idx(put("extra.idx", extra)), Catch::Contains("1 bytes after the 4704 values"));
  REQUIRE_THROWS_WITH(read_idx(dir / "absent.idx"), Catch::Contains("absent.idx") && Catch::Contains("No such file"));
  const std::string lb5 = put("lb5.idx", fixtures::idx_bytes({5}, {1, 2, 3, 4, 5}));
  REQUIRE_THROWS_WITH(read_idx_digits(dir / "plain/images.idx", lb5), Catch::Contains("6 images") && Catch::Contains("5 labels"));
  const std::string lb10 = put("lb10.idx", fixtures::idx_bytes({6}, {1, 2, 3, 10, 5, 6}));
  REQUIRE_THROWS_WITH(read_idx_digits(dir / "plain/images.idx", lb10), Catch::Contains("label 10 of item 3"));
  REQUIRE_THROWS_WITH(read_idx_digits(lb5, lb5), Catch::Contains("expected 3"));
}

TEST_CASE("triplemnist: generated images hold the right digits at x = 0/28/56, random y", "[triplemnist]") {
  TempDir dir;
  const auto f = fixtures::make_digits({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 2);
  const auto [im, lb] = fixtures::write_digit_idx(dir / "mnist", f, true);
  const IdxDigits digits = read_idx_digits(im, lb);
  const auto o = small_split(dir / "out");
  CHECK(write_triple_mnist(digits, o) == 8 * 6);
  CHECK(fixtures::fs::is_regular_file(dir / "out/train/345/5_345.png"));
  CHECK(fixtures::fs::is_regular_file(dir / "out/test/987/0_987.png"));

  TripleMnistOptions lo;
  lo.root = dir / "out";
  lo.image_size = 0;  // the stored 84x84, compared exactly (PNG is lossless)
  lo.cache.enabled = false;
  lo.split = "train";
  const Dataset train = load_triple_mnist(lo);
  REQUIRE(train.num_classes() == 4);
  CHECK(train.height() == 84);
  CHECK(train.width() == 84);
  CHECK(train.channels() == 1);
  CHECK(train.class_name(3) == "901");
  std::set<int> ys;
  std::set<int> used;  // fixture images seen
  std::vector<uint8_t> img(84 * 84);
  for (const std::string split : {"train", "val", "test"}) {
    lo.split = split;
    const Dataset d = load_triple_mnist(lo);
    for (int c = 0; c < d.num_classes(); ++c) {
      REQUIRE(d.class_size(c) == 6);
      const std::string name = d.class_name(c);
      for (int k = 0; k < 6; ++k) {
        d.read_image(c, k, img.data());
        for (int l = 0; l < 3; ++l) {
          // The digit's rows are the non-zero ones of its 28-column slot.
          int top = -1, rows = 0;
          for (int y = 0; y < 84; ++y) {
            bool any = false;
            for (int x = 28 * l; x < 28 * l + 28; ++x) any = any || img[y * 84 + x] != 0;
            if (any && top < 0) top = y;
            rows += any;
          }
          REQUIRE(top >= 0);
          REQUIRE(top < 56);
          REQUIRE(rows == 28);
          ys.insert(top);
          // The block must be one of the fixture images of digit name[l].
          int match = -1;
          for (int i = 0; i < f.count && match < 0; ++i) {
            if (f.labels[i] != name[l] - '0') continue;
            bool same = true;
            for (int r = 0; r < 28 && same; ++r)
              for (int x = 0; x < 28 && same; ++x)
                same = img[(top + r) * 84 + 28 * l + x] == fixtures::digit_pixel(i, r, x);
            if (same) match = i;
          }
          INFO("class " << name << " image " << k << " digit " << l << " at y " << top);
          REQUIRE(match >= 0);
          used.insert(match);
        }
      }
    }
  }
  CHECK(ys.size() > 20);    // positions are drawn, not fixed
  CHECK(used.size() == 20);  // both images of every digit appear

  // The default loader resizes to 28 (reg-MetaNAS's Resize(28)): the stored image, resized.
  lo.split = "val";
  lo.image_size = 28;
  const Dataset small = load_triple_mnist(lo);
  REQUIRE(small.height() == 28);
  const Image ref = resize_image(decode_image(dir / "out/val/111/0_111.png", 1), 28, 28);
  std::vector<uint8_t> px(28 * 28);
  small.read_image(0, 0, px.data());
  CHECK(px == ref.pixels);

  // Same seed, same pixels; another seed, other pixels.
  TempDir again, other;
  auto o2 = small_split(again.str());
  write_triple_mnist(digits, o2);
  CHECK(decode_image(again / "train/012/3_012.png", 1).pixels == decode_image(dir / "out/train/012/3_012.png", 1).pixels);
  o2.out = other.str();
  o2.seed = 8;
  write_triple_mnist(digits, o2);
  CHECK(decode_image(other / "train/012/3_012.png", 1).pixels != decode_image(dir / "out/train/012/3_012.png", 1).pixels);
}

TEST_CASE("triplemnist: the generator's default split is torchmeta's, load_dataset and schemes", "[triplemnist]") {
  TempDir dir;
  const auto f = fixtures::make_digits({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 1);
  const auto [im, lb] = fixtures::write_digit_idx(dir / "mnist", f, false);
  TripleMnistGenOptions o;
  o.out = dir / "tm";
  o.images_per_class = 1;
  CHECK(write_triple_mnist(read_idx_digits(im, lb), o) == 1000);
  LoadOptions lo;
  lo.root = dir / "tm";
  lo.cache.enabled = false;
  const Dataset test = load_dataset("triplemnist", "test", lo);
  REQUIRE(test.num_classes() == 200);
  std::vector<std::string> names;
  for (int c = 0; c < test.num_classes(); ++c) names.push_back(test.class_name(c));
  CHECK(names == words(kTestSorted));
  CHECK(test.height() == 28);  // the default size
  CHECK(load_dataset("triple-mnist", "train", lo).num_classes() == 640);
  lo.scheme = "torchmeta";
  CHECK(load_dataset("triplemnist", "val", lo).num_classes() == 160);
  // A split file re-partitions the released folders.
  fixtures::write_text(dir / "mine.json", R"({"train": ["002", "131"], "test": ["888"]})");
  lo.scheme = dir / "mine.json";
  const Dataset mine = load_dataset("triplemnist", "train", lo);
  REQUIRE(mine.num_classes() == 2);
  CHECK(mine.class_name(1) == "131");
}

TEST_CASE("triplemnist: bad input is a clear error", "[triplemnist][errors]") {
  TempDir dir;
  const auto f = fixtures::make_digits({0, 1, 2, 3, 4, 5, 6, 8, 9}, 1);  // no 7
  const auto [im, lb] = fixtures::write_digit_idx(dir / "mnist", f, false);
  const IdxDigits digits = read_idx_digits(im, lb);
  auto o = small_split(dir / "out");
  REQUIRE_THROWS_WITH(write_triple_mnist(digits, o), Catch::Contains("class 678 needs digit 7"));
  CHECK_FALSE(fixtures::fs::exists(dir / "out/train"));  // checked before writing anything
  o.splits = {std::vector<std::string>{"012"}, {}, {"000"}};
  write_triple_mnist(digits, o);
  REQUIRE_THROWS_WITH(write_triple_mnist(digits, o), Catch::Contains("is not empty"));
  o.overwrite = true;
  CHECK_NOTHROW(write_triple_mnist(digits, o));
  o.splits[0] = {"12"};
  REQUIRE_THROWS_WITH(write_triple_mnist(digits, o), Catch::Contains("class '12' is not three digits"));
  fixtures::write_text(dir / "dup.json", R"({"train": ["012"], "val": ["012"]})");
  REQUIRE_THROWS_WITH(read_triple_split_file(dir / "dup.json"), Catch::Contains("listed twice"));

  TripleMnistOptions lo;
  lo.root = dir / "out";
  lo.cache.enabled = false;
  lo.split = "val";  // not written: no val classes
  REQUIRE_THROWS_WITH(load_triple_mnist(lo), Catch::Contains("split folder '" + (dir / "out/val") + "' not found"));
  lo.split = "train";
  lo.scheme = "torchmeta";
  REQUIRE_THROWS_WITH(load_triple_mnist(lo), Catch::Contains("class '") && Catch::Contains("of torchmeta's train split"));
  lo.scheme = "folders";
  fixtures::write_text(dir / "out/train/012/9_012.png", "not a png");
  REQUIRE_THROWS_WITH(load_triple_mnist(lo), Catch::Contains("cannot decode image '") && Catch::Contains("9_012.png"));
  fixtures::fs::create_directories(dir / "out/test/555");
  lo.split = "test";
  REQUIRE_THROWS_WITH(load_triple_mnist(lo), Catch::Contains("class folder '") && Catch::Contains("555' has no images"));
  lo.root = dir / "nowhere";
  REQUIRE_THROWS_WITH(load_triple_mnist(lo), Catch::Contains("nowhere' does not exist"));
}
