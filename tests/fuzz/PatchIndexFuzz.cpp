// Fuzz target: the patch-index cache file (wsi/PatchIndexFile.cpp). Input = a cache file; its
// last 8 bytes are replaced by the checksum of the rest, so that mutations reach the fields
// behind the checksum instead of all failing on it. Bad input must end in a DataError; anything
// else is a bug. An accepted index must hold valid options, write back to the bytes that read
// to the same index, and survive labelling from annotations as tiling applies it after a load.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tests/fuzz/FuzzCheck.h"
#include "wsi/Annotations.h"
#include "wsi/Errors.h"
#include "wsi/PatchIndex.h"
#include "wsi/PatchIndexFile.h"

using namespace slidetrain::wsi;

namespace {

const Annotations& annotations() {
  static const Annotations a = Annotations::parseGeoJson(
      R"([{"type": "Feature", "properties": {"classification": {"name": "Tumor"}},
           "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [4000, 0], [0, 4000]]]}},
          {"type": "Feature", "properties": {"classification": {"name": "Exclusion"}},
           "geometry": {"type": "Polygon", "coordinates": [[[10, 10], [90, 10], [90, 90]]]}}])",
      "fuzz-annotations.geojson");
  return a;
}

bool same(const PatchIndex& a, const PatchIndex& b) {
  if (a.patches.size() != b.patches.size()) return false;
  for (size_t i = 0; i < a.patches.size(); ++i) {
    const auto &p = a.patches[i], &q = b.patches[i];
    if (p.x != q.x || p.y != q.y || p.label != q.label ||
        std::memcmp(&p.tissue, &q.tissue, sizeof p.tissue) != 0)
      return false;
  }
  return a.slidePath == b.slidePath && a.fingerprint == b.fingerprint &&
         a.options.level == b.options.level && a.options.size == b.options.size &&
         a.options.stride == b.options.stride && a.readSize == b.readSize &&
         a.options.targetMpp == b.options.targetMpp &&
         a.options.targetMagnification == b.options.targetMagnification &&
         a.options.whiteThreshold == b.options.whiteThreshold &&
         a.options.blackThreshold == b.options.blackThreshold;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<char> bytes(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  if (bytes.size() >= 8) {
    const uint64_t sum = detail::fnv1a(bytes.data(), bytes.size() - 8);
    std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
  }
  PatchIndex index;
  try {
    index = PatchIndex::parse(bytes, "fuzz.pidx");
  } catch (const DataError&) {
    return 0;
  }
  index.options.validate();  // throws std::invalid_argument (uncaught: a bug) when not valid
  FUZZ_CHECK(index.readSide() >= 1 && index.levelDownsample > 0, "read side and downsample");

  const std::vector<char> written = index.serialize();
  PatchIndex again;
  try {
    again = PatchIndex::parse(written, "rewritten.pidx");
  } catch (const DataError& e) {
    FUZZ_CHECK(false, std::string("a written index does not read back: ") + e.what());
  }
  FUZZ_CHECK(same(index, again), "the index changed on writing and re-reading");
  FUZZ_CHECK(again.serialize() == written, "writing is not stable");

  LabelOptions area;
  area.mode = LabelOptions::Mode::Area;
  area.grid = 2;
  LabelOptions roi;
  roi.roiOnly = true;
  auto indexOf = [](const std::string& cls) { return cls == "Tumor" ? 1 : -1; };
  for (const auto& labels : {LabelOptions{}, area, roi}) {
    PatchIndex copy = index;
    if (copy.patches.size() > 4096) copy.patches.resize(4096);
    copy.applyAnnotations(annotations(), 0, indexOf, labels);
    for (const auto& p : copy.patches) FUZZ_CHECK(p.label == 0 || p.label == 1, "label");
  }
  return 0;
}
