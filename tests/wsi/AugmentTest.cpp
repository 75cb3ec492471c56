#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "wsi/Augment.h"

using namespace slidetrain::wsi;

namespace {
RgbImage ramp(int n) {
  RgbImage img;
  img.width = img.height = n;
  img.pixels.resize(static_cast<size_t>(n) * n * 3);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = static_cast<uint8_t>(x * 7 + y), p[1] = static_cast<uint8_t>(y * 5), p[2] = static_cast<uint8_t>(100 + x);
    }
  return img;
}
}  // namespace

TEST(Augment, SameSeedSameResultDifferentSeedDiffers) {
  AugmentOptions o;
  o.brightness = o.contrast = o.saturation = 0.2;
  o.hue = 0.05;
  RgbImage a = ramp(16), b = ramp(16), c = ramp(16);
  augmentPatch(a, o, 42);
  augmentPatch(b, o, 42);
  EXPECT_EQ(a.pixels, b.pixels);
  int differing = 0;
  for (uint64_t s = 1; s < 6; ++s) {
    RgbImage d = ramp(16);
    augmentPatch(d, o, s);
    differing += d.pixels != a.pixels;
  }
  EXPECT_GE(differing, 4);
  (void)c;
}

TEST(Augment, AllOffIsIdentity) {
  AugmentOptions o;
  o.flips = o.rot90 = false;
  RgbImage a = ramp(8);
  const auto before = a.pixels;
  augmentPatch(a, o, 7);
  EXPECT_EQ(a.pixels, before);
}

TEST(Augment, GeometryIsAPermutationOfPixels) {
  AugmentOptions o;  // flips + rot90 only
  for (uint64_t s = 0; s < 16; ++s) {
    RgbImage a = ramp(8);
    augmentPatch(a, o, s);
    // Every source pixel appears exactly once: compare sorted pixel triplets.
    auto key = [](const RgbImage& im) {
      std::vector<uint32_t> k;
      for (size_t i = 0; i < im.pixels.size(); i += 3)
        k.push_back(im.pixels[i] << 16 | im.pixels[i + 1] << 8 | im.pixels[i + 2]);
      std::sort(k.begin(), k.end());
      return k;
    };
    EXPECT_EQ(key(a), key(ramp(8)));
    // Corners map to corners under the dihedral group.
    const uint8_t* c = a.at(0, 0);
    bool isCorner = false;
    const RgbImage r = ramp(8);
    for (auto [x, y] : {std::pair{0, 0}, {7, 0}, {0, 7}, {7, 7}})
      isCorner |= std::equal(c, c + 3, r.at(x, y));
    EXPECT_TRUE(isCorner);
  }
}

TEST(Augment, BrightnessScalesPixels) {
  AugmentOptions o;
  o.flips = o.rot90 = false;
  o.brightness = 0.5;
  RgbImage a;
  a.width = a.height = 2;
  a.pixels.assign(12, 100);
  augmentPatch(a, o, 3);
  for (uint8_t v : a.pixels) EXPECT_EQ(v, a.pixels[0]);  // uniform stays uniform
  EXPECT_GE(a.pixels[0], 50);
  EXPECT_LE(a.pixels[0], 150);
}

namespace {
AugmentOptions none() {
  AugmentOptions o;
  o.flips = o.rot90 = false;
  return o;
}
RgbImage tissueLike(int n) {  // smooth pink/purple texture, like H&E
  RgbImage img = ramp(n);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x) {
      uint8_t* p = img.at(x, y);
      const double t = 0.5 + 0.5 * std::sin(x * 0.21) * std::cos(y * 0.17);
      p[0] = static_cast<uint8_t>(230 - 90 * t), p[1] = static_cast<uint8_t>(170 - 110 * t),
      p[2] = static_cast<uint8_t>(210 - 40 * t);
    }
  return img;
}
}  // namespace

TEST(Augment, NewOptionsAreOffByDefault) {
  AugmentOptions o = none();
  EXPECT_FALSE(o.any());
  RgbImage a = tissueLike(16);
  const auto before = a.pixels;
  augmentPatch(a, o, 11);
  EXPECT_EQ(a.pixels, before);
}

// Turning on one augmentation must not change another's random draw: for pointwise or
// later-stage operations, "geometry + op" equals "geometry" followed by "op alone", same seed.
TEST(Augment, EachOptionKeepsItsOwnDraw) {
  struct Case {
    const char* name;
    void (*set)(AugmentOptions&);
  };
  const Case cases[] = {
      {"brightness", [](AugmentOptions& o) { o.brightness = 0.3; }},
      {"saturation", [](AugmentOptions& o) { o.saturation = 0.3; }},
      {"hue", [](AugmentOptions& o) { o.hue = 0.05; }},
      {"hed", [](AugmentOptions& o) { o.hed = 0.05; }},
      {"blur", [](AugmentOptions& o) { o.blur = 1.5; }},
      {"sharpen", [](AugmentOptions& o) { o.sharpen = 0.5; }},
      {"noise", [](AugmentOptions& o) { o.noise = 8; }},
  };
  for (const auto& c : cases) {
    for (uint64_t seed : {3ull, 77ull, 1234ull}) {
      AugmentOptions geo;  // flips + rot90
      AugmentOptions both = geo, only = none();
      c.set(both), c.set(only);
      RgbImage a = tissueLike(24), b = tissueLike(24);
      augmentPatch(a, both, seed);
      augmentPatch(b, geo, seed);
      augmentPatch(b, only, seed);
      EXPECT_EQ(a.pixels, b.pixels) << c.name << " seed " << seed;
    }
  }
}

TEST(Augment, SmallAffineKeepsUniformImagesAndIsDeterministic) {
  AugmentOptions o = none();
  o.rotate = 15, o.shift = 0.1, o.scale = 0.2;
  RgbImage u;
  u.width = u.height = 32;
  u.pixels.assign(32 * 32 * 3, 123);
  augmentPatch(u, o, 5);
  for (uint8_t v : u.pixels) ASSERT_EQ(v, 123);
  RgbImage a = tissueLike(32), b = tissueLike(32);
  augmentPatch(a, o, 9);
  augmentPatch(b, o, 9);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_NE(a.pixels, tissueLike(32).pixels);
}

TEST(Augment, ReinhardMovesStatisticsToTheTarget) {
  RgbImage ref = tissueLike(64);
  std::array<double, 3> mean{}, sd{};
  reinhardTarget(ref, &mean, &sd);
  // A differently stained version of the same tissue: darker, bluer.
  RgbImage other = tissueLike(64);
  for (size_t i = 0; i < other.pixels.size(); i += 3) {
    other.pixels[i] = static_cast<uint8_t>(other.pixels[i] * 0.7);
    other.pixels[i + 2] = static_cast<uint8_t>(std::min(255.0, other.pixels[i + 2] * 1.1));
  }
  reinhardNormalize(other, mean, sd);
  std::array<double, 3> m2{}, s2{};
  reinhardTarget(other, &m2, &s2);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(m2[c], mean[c], 1.5) << c;
    EXPECT_NEAR(s2[c], sd[c], 1.5) << c;
  }
}

TEST(Augment, HedJitterWithZeroDrawIsNearIdentity) {
  // Colour deconvolution round trip alone (alpha = 1, beta = 0) changes pixels by rounding only.
  AugmentOptions o = none();
  o.hed = 1e-9;
  RgbImage a = tissueLike(32);
  augmentPatch(a, o, 4);
  const RgbImage r = tissueLike(32);
  for (size_t i = 0; i < a.pixels.size(); ++i) ASSERT_NEAR(a.pixels[i], r.pixels[i], 1);
}

TEST(Augment, FullPipelineRunsOnA224PatchAndIsSeeded) {
  // Every augmentation at once (its cost is measured by bench_augment, not here): the patch
  // changes, keeps its size, and the same seed gives the same pixels.
  AugmentOptions o;
  o.brightness = o.contrast = o.saturation = 0.1;
  o.hue = 0.02, o.rotate = 10, o.shift = 0.05, o.scale = 0.1, o.hed = 0.05;
  o.blur = 1.0, o.sharpen = 0.3, o.noise = 3;
  o.stainNorm = StainNorm::Reinhard;
  o.validate();
  const RgbImage src = tissueLike(224);
  RgbImage a = src, b = src, c = src;
  augmentPatch(a, o, 11);
  augmentPatch(b, o, 11);
  augmentPatch(c, o, 12);
  ASSERT_EQ(a.width, 224);
  ASSERT_EQ(a.height, 224);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_NE(a.pixels, src.pixels);
  EXPECT_NE(a.pixels, c.pixels);
}
