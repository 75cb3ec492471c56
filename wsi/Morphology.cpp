// Morphology kernels for TissueMask. Separable square windows keep dilation/erosion O(1) per
// pixel via running counts; components use an explicit stack (no recursion depth limits).
#include "wsi/Morphology.h"

#include <algorithm>
#include <array>

namespace slidetrain::wsi {

Plane medianBlur(const Plane& in, int radius) {
  if (radius <= 0 || in.data.empty()) return in;
  Plane out{in.width, in.height, std::vector<uint8_t>(in.data.size())};
  const int W = in.width, H = in.height, n = (2 * radius + 1) * (2 * radius + 1), half = n / 2;
  auto clampX = [W](int x) { return std::clamp(x, 0, W - 1); };
  auto clampY = [H](int y) { return std::clamp(y, 0, H - 1); };
  for (int y = 0; y < H; ++y) {
    std::array<int, 256> hist{};
    for (int dy = -radius; dy <= radius; ++dy)
      for (int dx = -radius; dx <= radius; ++dx) ++hist[in.at(clampX(dx), clampY(y + dy))];
    // Invariant: below = number of window values < m, and m is the median.
    int m = 0, below = 0;
    while (below + hist[m] <= half) below += hist[m++];
    for (int x = 0; x < W; ++x) {
      out.at(x, y) = uint8_t(m);
      if (x + 1 == W) break;
      const int xr = clampX(x - radius), xa = clampX(x + radius + 1);
      for (int dy = -radius; dy <= radius; ++dy) {
        const int yy = clampY(y + dy);
        const uint8_t vr = in.at(xr, yy), va = in.at(xa, yy);
        --hist[vr];
        if (vr < m) --below;
        ++hist[va];
        if (va < m) ++below;
      }
      while (below > half) below -= hist[--m];
      while (below + hist[m] <= half) below += hist[m++];
    }
  }
  return out;
}

namespace {

// One pass of a 1-D running-count filter along rows (horizontal) or columns. A pixel becomes 1
// when the count of 1s in its window is >= need; `outside` is the value assumed past the border.
Plane windowPass(const Plane& in, int radius, bool horizontal, int need, uint8_t outside) {
  Plane out{in.width, in.height, std::vector<uint8_t>(in.data.size())};
  const int len = horizontal ? in.width : in.height;
  const int lines = horizontal ? in.height : in.width;
  for (int l = 0; l < lines; ++l) {
    auto get = [&](int i) -> int {
      if (i < 0 || i >= len) return outside;
      return horizontal ? in.at(i, l) : in.at(l, i);
    };
    int count = 0;
    for (int i = -radius; i <= radius; ++i) count += get(i);
    for (int i = 0; i < len; ++i) {
      (horizontal ? out.at(i, l) : out.at(l, i)) = count >= need ? 1 : 0;
      count += get(i + radius + 1) - get(i - radius);
    }
  }
  return out;
}

}  // namespace

Plane dilate(const Plane& in, int radius) {
  if (radius <= 0) return in;
  return windowPass(windowPass(in, radius, true, 1, 0), radius, false, 1, 0);
}

Plane erode(const Plane& in, int radius) {
  if (radius <= 0) return in;
  const int full = 2 * radius + 1;
  return windowPass(windowPass(in, radius, true, full, 1), radius, false, full, 1);
}

Plane close(const Plane& in, int radius) { return erode(dilate(in, radius), radius); }

void removeSmallComponents(Plane& mask, int minArea) {
  if (minArea <= 1) return;
  const int W = mask.width, H = mask.height;
  std::vector<uint8_t> seen(mask.data.size(), 0);
  std::vector<int> stack, component;
  for (int start = 0; start < W * H; ++start) {
    if (!mask.data[start] || seen[start]) continue;
    component.clear();
    stack.assign(1, start);
    seen[start] = 1;
    while (!stack.empty()) {
      const int p = stack.back();
      stack.pop_back();
      component.push_back(p);
      const int px = p % W, py = p / W;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int x = px + dx, y = py + dy;
          if (x < 0 || y < 0 || x >= W || y >= H) continue;
          const int q = y * W + x;
          if (mask.data[q] && !seen[q]) seen[q] = 1, stack.push_back(q);
        }
    }
    if (int(component.size()) < minArea)
      for (int p : component) mask.data[p] = 0;
  }
}

void fillHoles(Plane& mask) {
  const int W = mask.width, H = mask.height;
  std::vector<uint8_t> outside(mask.data.size(), 0);
  std::vector<int> stack;
  auto seed = [&](int x, int y) {
    const int p = y * W + x;
    if (!mask.data[p] && !outside[p]) outside[p] = 1, stack.push_back(p);
  };
  for (int x = 0; x < W; ++x) seed(x, 0), seed(x, H - 1);
  for (int y = 0; y < H; ++y) seed(0, y), seed(W - 1, y);
  while (!stack.empty()) {
    const int p = stack.back();
    stack.pop_back();
    const int x = p % W, y = p / W;
    if (x > 0) seed(x - 1, y);
    if (x + 1 < W) seed(x + 1, y);
    if (y > 0) seed(x, y - 1);
    if (y + 1 < H) seed(x, y + 1);
  }
  for (size_t i = 0; i < mask.data.size(); ++i)
    if (!outside[i]) mask.data[i] = 1;
}

}  // namespace slidetrain::wsi
