#include "wsi/Augment.h"
#include "wsi/Random.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace slidetrain::wsi {

namespace {

// Rounds half away from zero like std::lround, without its cost (v >= 0 where it matters).
inline uint8_t clamp8(double v) {
  return v <= 0 ? 0 : v >= 255 ? 255 : static_cast<uint8_t>(static_cast<int>(v + 0.5));
}

// Rotates by k*90 degrees counter-clockwise and optionally mirrors, in one remap.
void geometric(RgbImage& img, int k, bool flipX, bool flipY) {
  if (k == 0 && !flipX && !flipY) return;
  const int n = img.width;  // square patches
  std::vector<uint8_t> out(img.pixels.size());
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) {
      int sx = flipX ? n - 1 - x : x;
      int sy = flipY ? n - 1 - y : y;
      for (int r = 0; r < k; ++r) {  // inverse-map one quarter turn at a time
        const int t = sx;
        sx = n - 1 - sy;
        sy = t;
      }
      std::copy_n(img.at(sx, sy), 3, out.data() + (static_cast<size_t>(y) * n + x) * 3);
    }
  }
  img.pixels.swap(out);
}

void rotateHue(uint8_t* p, double shift) {
  // RGB -> HSV -> RGB with the hue moved by `shift` turns.
  const double r = p[0] / 255.0, g = p[1] / 255.0, b = p[2] / 255.0;
  const double mx = std::max({r, g, b}), mn = std::min({r, g, b}), d = mx - mn;
  if (d <= 0) return;
  double h = mx == r ? std::fmod((g - b) / d, 6.0) : mx == g ? (b - r) / d + 2 : (r - g) / d + 4;
  h = std::fmod(h / 6.0 + shift + 1.0, 1.0) * 6.0;
  const double s = d / mx, v = mx, c = v * s, x = c * (1 - std::fabs(std::fmod(h, 2.0) - 1)), m = v - c;
  double rr = 0, gg = 0, bb = 0;
  switch (static_cast<int>(h)) {
    case 0: rr = c, gg = x; break;
    case 1: rr = x, gg = c; break;
    case 2: gg = c, bb = x; break;
    case 3: gg = x, bb = c; break;
    case 4: rr = x, bb = c; break;
    default: rr = c, bb = x; break;
  }
  p[0] = clamp8((rr + m) * 255), p[1] = clamp8((gg + m) * 255), p[2] = clamp8((bb + m) * 255);
}


// ---- small affine: rotation, shift, scale (bilinear, mirrored border) ----------------------------
int mirror(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * n - 2;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

void affine(RgbImage& img, double angleDeg, double sx, double sy, double zoom) {
  const int w = img.width, h = img.height;
  const double a = angleDeg * M_PI / 180.0, c = std::cos(a) / zoom, s = std::sin(a) / zoom;
  const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
  std::vector<uint8_t> out(img.pixels.size());
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      // Inverse map: output pixel -> source position (rotate by -angle, scale by 1/zoom).
      const double dx = x - cx - sx, dy = y - cy - sy;
      const double u = c * dx + s * dy + cx, v = -s * dx + c * dy + cy;
      const int x0 = static_cast<int>(std::floor(u)), y0 = static_cast<int>(std::floor(v));
      const double fx = u - x0, fy = v - y0;
      const uint8_t* p00 = img.at(mirror(x0, w), mirror(y0, h));
      const uint8_t* p10 = img.at(mirror(x0 + 1, w), mirror(y0, h));
      const uint8_t* p01 = img.at(mirror(x0, w), mirror(y0 + 1, h));
      const uint8_t* p11 = img.at(mirror(x0 + 1, w), mirror(y0 + 1, h));
      uint8_t* q = out.data() + (static_cast<size_t>(y) * w + x) * 3;
      for (int k = 0; k < 3; ++k) {
        const double top = p00[k] + (p10[k] - p00[k]) * fx, bot = p01[k] + (p11[k] - p01[k]) * fx;
        q[k] = clamp8(top + (bot - top) * fy);
      }
    }
  }
  img.pixels.swap(out);
}

// ---- HED stain jitter (Ruifrok & Johnston colour deconvolution) ---------------------------------
// Rows: haematoxylin, eosin, DAB optical-density vectors (as in scikit-image's rgb2hed).
constexpr double kHed[3][3] = {{0.65, 0.70, 0.29}, {0.07, 0.99, 0.11}, {0.27, 0.57, 0.78}};

void invert3(const double m[3][3], double inv[3][3]) {
  const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                     m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                     m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      const int a = (j + 1) % 3, b = (j + 2) % 3, cc = (i + 1) % 3, d = (i + 2) % 3;
      inv[i][j] = (m[a][cc] * m[b][d] - m[a][d] * m[b][cc]) / det;
    }
}

void hedJitter(RgbImage& img, const double alpha[3], const double beta[3]) {
  double m[3][3], inv[3][3];
  for (int i = 0; i < 3; ++i) {  // normalise the stain vectors
    const double n = std::sqrt(kHed[i][0] * kHed[i][0] + kHed[i][1] * kHed[i][1] + kHed[i][2] * kHed[i][2]);
    for (int j = 0; j < 3; ++j) m[i][j] = kHed[i][j] / n;
  }
  invert3(m, inv);
  double od[256];  // optical density of each 8-bit value
  for (int v = 0; v < 256; ++v) od[v] = -std::log((v + 1) / 256.0);
  const size_t n = img.pixels.size() / 3;
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = img.pixels.data() + i * 3;
    const double o[3] = {od[p[0]], od[p[1]], od[p[2]]};
    double st[3];
    for (int j = 0; j < 3; ++j) {
      st[j] = o[0] * inv[0][j] + o[1] * inv[1][j] + o[2] * inv[2][j];
      st[j] = st[j] * alpha[j] + beta[j];
    }
    for (int k = 0; k < 3; ++k) {
      const double d = st[0] * m[0][k] + st[1] * m[1][k] + st[2] * m[2][k];
      p[k] = clamp8(256.0 * std::exp(-d) - 1.0);
    }
  }
}

// ---- Gaussian blur, sharpening, noise ----------------------------------------------------------
void gaussianBlur(RgbImage& img, double sigma) {
  const int r = std::max(1, static_cast<int>(std::ceil(3 * sigma)));
  std::vector<float> k(2 * r + 1);
  double sum = 0;
  for (int i = -r; i <= r; ++i) sum += k[i + r] = static_cast<float>(std::exp(-0.5 * i * i / (sigma * sigma)));
  for (auto& v : k) v = static_cast<float>(v / sum);
  const int w = img.width, h = img.height;
  // Mirrored neighbour indices, computed once per axis.
  std::vector<int> mx(static_cast<size_t>(w) * (2 * r + 1)), my(static_cast<size_t>(h) * (2 * r + 1));
  for (int x = 0; x < w; ++x)
    for (int i = -r; i <= r; ++i) mx[static_cast<size_t>(x) * (2 * r + 1) + i + r] = mirror(x + i, w) * 3;
  for (int y = 0; y < h; ++y)
    for (int i = -r; i <= r; ++i) my[static_cast<size_t>(y) * (2 * r + 1) + i + r] = mirror(y + i, h);
  std::vector<float> tmp(img.pixels.size());
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = img.at(0, y);
    float* out = tmp.data() + static_cast<size_t>(y) * w * 3;
    for (int x = 0; x < w; ++x) {
      const int* idx = &mx[static_cast<size_t>(x) * (2 * r + 1)];
      float a0 = 0, a1 = 0, a2 = 0;
      for (int i = 0; i <= 2 * r; ++i) {
        const uint8_t* p = row + idx[i];
        a0 += k[i] * p[0], a1 += k[i] * p[1], a2 += k[i] * p[2];
      }
      out[x * 3] = a0, out[x * 3 + 1] = a1, out[x * 3 + 2] = a2;
    }
  }
  const size_t stride = static_cast<size_t>(w) * 3;
  std::vector<float> acc(stride);
  for (int y = 0; y < h; ++y) {
    std::fill(acc.begin(), acc.end(), 0.f);
    const int* idx = &my[static_cast<size_t>(y) * (2 * r + 1)];
    for (int i = 0; i <= 2 * r; ++i) {
      const float* src = tmp.data() + static_cast<size_t>(idx[i]) * stride;
      for (size_t j = 0; j < stride; ++j) acc[j] += k[i] * src[j];
    }
    uint8_t* dst = img.at(0, y);
    for (size_t j = 0; j < stride; ++j) dst[j] = clamp8(acc[j]);
  }
}

void sharpen(RgbImage& img, double amount) {
  const int w = img.width, h = img.height;
  std::vector<uint8_t> out(img.pixels.size());
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const double centre = img.at(x, y)[c];
        const double nb = img.at(mirror(x - 1, w), y)[c] + img.at(mirror(x + 1, w), y)[c] +
                          img.at(x, mirror(y - 1, h))[c] + img.at(x, mirror(y + 1, h))[c];
        out[(static_cast<size_t>(y) * w + x) * 3 + c] = clamp8(centre + amount * (4 * centre - nb));
      }
  img.pixels.swap(out);
}

void gaussianNoise(RgbImage& img, double std, uint64_t seed) {
  Rng rng{seed};
  for (size_t i = 0; i < img.pixels.size(); i += 2) {  // Box-Muller: two normals per draw pair
    const double u1 = (static_cast<double>(rng.next() >> 11) + 1.0) * 0x1.0p-53, u2 = rng.uniform(0, 1);
    const double rad = std::sqrt(-2.0 * std::log(u1)), th = 2 * M_PI * u2;
    img.pixels[i] = clamp8(img.pixels[i] + std * rad * std::cos(th));
    if (i + 1 < img.pixels.size()) img.pixels[i + 1] = clamp8(img.pixels[i + 1] + std * rad * std::sin(th));
  }
}

// ---- CIELAB (D65) for Reinhard -------------------------------------------------------------------
struct Lab {
  double toLinear[256];
  std::vector<uint8_t> fromLinear;  // 4096 steps of linear light -> sRGB 8-bit
  Lab() : fromLinear(4097) {
    for (int v = 0; v < 256; ++v) {
      const double c = v / 255.0;
      toLinear[v] = c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
    }
    for (int i = 0; i <= 4096; ++i) {
      const double l = i / 4096.0;
      fromLinear[i] = clamp8(255.0 * (l <= 0.0031308 ? 12.92 * l : 1.055 * std::pow(l, 1 / 2.4) - 0.055));
    }
  }
  static double f(double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116; }
  static double finv(double t) { return t > 0.206893 ? t * t * t : (t - 16.0 / 116) / 7.787; }
  void toLab(const uint8_t* p, double* lab) const {
    const double r = toLinear[p[0]], g = toLinear[p[1]], b = toLinear[p[2]];
    const double x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047;
    const double y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b;
    const double z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883;
    const double fx = f(x), fy = f(y), fz = f(z);
    lab[0] = 116 * fy - 16, lab[1] = 500 * (fx - fy), lab[2] = 200 * (fy - fz);
  }
  void toRgb(const double* lab, uint8_t* p) const {
    const double fy = (lab[0] + 16) / 116, fx = fy + lab[1] / 500, fz = fy - lab[2] / 200;
    const double x = finv(fx) * 0.95047, y = finv(fy), z = finv(fz) * 1.08883;
    const double lin[3] = {3.2404542 * x - 1.5371385 * y - 0.4985314 * z,
                           -0.9692660 * x + 1.8760108 * y + 0.0415560 * z,
                           0.0556434 * x - 0.2040259 * y + 1.0572252 * z};
    for (int k = 0; k < 3; ++k)
      p[k] = fromLinear[static_cast<size_t>(std::lround(std::clamp(lin[k], 0.0, 1.0) * 4096))];
  }
};

const Lab& lab() {
  static const Lab table;
  return table;
}

}  // namespace

void AugmentOptions::validate() const {
  auto check = [](double v, double hi, const char* key) {
    if (!(v >= 0 && v <= hi))
      throw std::invalid_argument(std::string("augment.") + key + ": must be in [0, " +
                                  std::to_string(hi) + "], got " + std::to_string(v));
  };
  check(brightness, 1, "brightness"), check(contrast, 1, "contrast"), check(saturation, 1, "saturation");
  check(hue, 0.5, "hue"), check(rotate, 180, "rotate"), check(shift, 0.5, "shift");
  check(scale, 0.9, "scale"), check(hed, 1, "hed"), check(blur, 10, "blur");
  check(sharpen, 5, "sharpen"), check(noise, 128, "noise");
  for (int c = 0; c < 3; ++c)
    if (!(reinhardStd[c] > 0)) throw std::invalid_argument("augment.reinhard_std: must be positive");
}

void reinhardTarget(const RgbImage& ref, std::array<double, 3>* mean, std::array<double, 3>* std) {
  const Lab& t = lab();
  const size_t n = ref.pixels.size() / 3;
  double s[3] = {0, 0, 0}, ss[3] = {0, 0, 0};
  for (size_t i = 0; i < n; ++i) {
    double l[3];
    t.toLab(ref.pixels.data() + i * 3, l);
    for (int c = 0; c < 3; ++c) s[c] += l[c], ss[c] += l[c] * l[c];
  }
  for (int c = 0; c < 3; ++c) {
    (*mean)[c] = n ? s[c] / n : 0;
    (*std)[c] = n ? std::sqrt(std::max(0.0, ss[c] / n - (*mean)[c] * (*mean)[c])) : 0;
  }
}

void reinhardNormalize(RgbImage& img, const std::array<double, 3>& mean, const std::array<double, 3>& sd) {
  const Lab& t = lab();
  const size_t n = img.pixels.size() / 3;
  std::vector<double> labs(n * 3);
  double s[3] = {0, 0, 0}, ss[3] = {0, 0, 0};
  for (size_t i = 0; i < n; ++i) {
    t.toLab(img.pixels.data() + i * 3, &labs[i * 3]);
    for (int c = 0; c < 3; ++c) s[c] += labs[i * 3 + c], ss[c] += labs[i * 3 + c] * labs[i * 3 + c];
  }
  double m[3], gain[3];
  for (int c = 0; c < 3; ++c) {
    m[c] = n ? s[c] / n : 0;
    const double d = n ? std::sqrt(std::max(0.0, ss[c] / n - m[c] * m[c])) : 0;
    gain[c] = d > 1e-6 ? sd[c] / d : 1.0;  // a flat channel keeps its spread (none)
  }
  for (size_t i = 0; i < n; ++i) {
    double l[3];
    for (int c = 0; c < 3; ++c) l[c] = (labs[i * 3 + c] - m[c]) * gain[c] + mean[c];
    l[0] = std::clamp(l[0], 0.0, 100.0);
    t.toRgb(l, img.pixels.data() + i * 3);
  }
}

void augmentPatch(RgbImage& img, const AugmentOptions& o, uint64_t seed) {
  Rng rng{seed};
  // Draw every random number in a fixed order whatever the options, so turning one augmentation
  // off does not change the others' draws. New draws are only ever appended.
  const int k = static_cast<int>(rng.next() & 3);
  const bool fx = rng.next() & 1, fy = rng.next() & 1;
  const double bright = 1 + rng.uniform(-o.brightness, o.brightness);
  const double contrast = 1 + rng.uniform(-o.contrast, o.contrast);
  const double sat = 1 + rng.uniform(-o.saturation, o.saturation);
  const double hue = rng.uniform(-o.hue, o.hue);
  const double angle = rng.uniform(-o.rotate, o.rotate);
  const double shiftX = rng.uniform(-o.shift, o.shift) * img.width;
  const double shiftY = rng.uniform(-o.shift, o.shift) * img.height;
  const double zoom = 1 + rng.uniform(-o.scale, o.scale);
  double hedAlpha[3], hedBeta[3];
  for (int c = 0; c < 3; ++c) hedAlpha[c] = 1 + rng.uniform(-o.hed, o.hed);
  for (int c = 0; c < 3; ++c) hedBeta[c] = rng.uniform(-o.hed, o.hed);
  const double blurSigma = rng.uniform(0, o.blur);
  const double sharpAmount = rng.uniform(0, o.sharpen);
  const double noiseStd = rng.uniform(0, o.noise);
  const uint64_t noiseSeed = rng.next();

  if (o.stainNorm == StainNorm::Reinhard) reinhardNormalize(img, o.reinhardMean, o.reinhardStd);
  if (img.width == img.height) geometric(img, o.rot90 ? k : 0, o.flips && fx, o.flips && fy);
  if (o.rotate > 0 || o.shift > 0 || o.scale > 0) affine(img, angle, shiftX, shiftY, zoom);

  const size_t n = static_cast<size_t>(img.width) * img.height;
  if (o.brightness > 0 || o.contrast > 0 || o.saturation > 0) {
    double mean = 0;
    if (o.contrast > 0) {
      for (size_t i = 0; i < n * 3; ++i) mean += img.pixels[i];
      mean /= static_cast<double>(n * 3);
    }
    for (size_t i = 0; i < n; ++i) {
      uint8_t* p = img.pixels.data() + i * 3;
      double v[3];
      // contrast == 1 and mean == 0 when contrast jitter is off.
      for (int c = 0; c < 3; ++c) v[c] = ((p[c] - mean) * contrast + mean) * bright;
      const double grey = 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2];
      for (int c = 0; c < 3; ++c) p[c] = clamp8(grey + (v[c] - grey) * sat);
    }
  }
  if (o.hue > 0)
    for (size_t i = 0; i < n; ++i) rotateHue(img.pixels.data() + i * 3, hue);
  if (o.hed > 0) hedJitter(img, hedAlpha, hedBeta);
  if (o.blur > 0 && blurSigma >= 0.2) gaussianBlur(img, blurSigma);
  if (o.sharpen > 0 && sharpAmount > 0) sharpen(img, sharpAmount);
  if (o.noise > 0 && noiseStd > 0) gaussianNoise(img, noiseStd, noiseSeed);
}

}  // namespace slidetrain::wsi
