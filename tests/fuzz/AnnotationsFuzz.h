#pragma once
// Shared by the GeoJSON and ASAP XML fuzz targets: what an accepted Annotations must satisfy,
// and the code that consumes it after the parse (point lookup, area, labelling a patch grid in
// both label modes), so that what the parser lets through is also exercised.
#include <cmath>
#include <string>

#include "tests/fuzz/FuzzCheck.h"
#include "wsi/Annotations.h"
#include "wsi/PatchIndex.h"

namespace slidetrain::wsi::fuzz {

inline void checkPolygon(const AnnotationPolygon& p) {
  FUZZ_CHECK(!p.className.empty(), "an accepted polygon has a class");
  FUZZ_CHECK(!p.rings.empty(), p.className);
  for (const auto& ring : p.rings) {
    FUZZ_CHECK(ring.size() >= 3, p.className);
    for (const auto& v : ring)
      FUZZ_CHECK(std::isfinite(v[0]) && std::isfinite(v[1]),
                 p.className + ": vertex " + std::to_string(v[0]) + ", " + std::to_string(v[1]));
  }
  FUZZ_CHECK(p.bounds[0] <= p.bounds[2] && p.bounds[1] <= p.bounds[3], p.className);
  (void)p.area();
}

inline void exercise(const Annotations& a) {
  for (const auto& p : a.polygons()) {
    checkPolygon(p);
    FUZZ_CHECK(!Annotations::isExclusionClass(p.className), p.className);
  }
  for (const auto& p : a.exclusions()) {
    checkPolygon(p);
    FUZZ_CHECK(Annotations::isExclusionClass(p.className), p.className);
  }
  (void)a.classNames();
  // Label lookups at each polygon's corners and centre, then a small grid labelled as tiling
  // does after loading a cached index (centre mode, area mode, ROI only).
  PatchIndex index;
  index.options.size = 16;
  index.levelDownsample = 1;
  for (const auto& p : a.polygons()) {
    const double cx = (p.bounds[0] + p.bounds[2]) / 2, cy = (p.bounds[1] + p.bounds[3]) / 2;
    (void)a.labelAt(cx, cy);
    (void)a.labelAt(p.bounds[0], p.bounds[1]);
    if (index.patches.size() < 64 && std::abs(cx) < 1e15 && std::abs(cy) < 1e15)
      index.patches.push_back({int64_t(cx) - 8, int64_t(cy) - 8, 1.0f, 0});
  }
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) index.patches.push_back({x * 16, y * 16, 1.0f, 0});
  auto indexOf = [](const std::string& cls) { return int32_t(cls.size() % 3) - 1; };
  LabelOptions centre, area, roi;
  area.mode = LabelOptions::Mode::Area;
  area.grid = 4;
  roi.roiOnly = true;
  for (const auto& labels : {centre, area, roi}) {
    PatchIndex copy = index;
    copy.applyAnnotations(a, 0, indexOf, labels);
    for (const auto& p : copy.patches) FUZZ_CHECK(p.label >= 0 && p.label <= 1, "label");
  }
}

}  // namespace slidetrain::wsi::fuzz
