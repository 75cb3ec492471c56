// Fuzz target: the cohort CSV (wsi/Cohort.h). Input = the CSV text. Bad input must end in a
// DataError; anything else (a crash, a sanitizer report, another exception) is a bug. An accepted
// cohort must be consistent, accept a re-ordering of its classes, and read back from what
// write() makes of it.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "tests/fuzz/FuzzCheck.h"
#include "wsi/Cohort.h"
#include "wsi/Errors.h"

using slidetrain::wsi::Cohort;
using slidetrain::wsi::DataError;

namespace {

void checkConsistent(const Cohort& c, bool requireLabels) {
  FUZZ_CHECK(!c.slides.empty(), "an accepted cohort lists slides");
  for (const auto& e : c.slides) {
    FUZZ_CHECK(!e.slideId.empty() && !e.path.empty(), e.slideId);
    FUZZ_CHECK(e.split.empty() || e.split == "train" || e.split == "val" || e.split == "test",
               e.split);
    FUZZ_CHECK(!e.mpp || (*e.mpp > 0 && std::isfinite(*e.mpp)), e.slideId);
    FUZZ_CHECK(!requireLabels || e.labelIndex >= 0, e.slideId);
    FUZZ_CHECK(e.label.empty() == (e.labelIndex < 0), e.slideId);
    FUZZ_CHECK(e.labelIndex < 0 || c.classes.at(size_t(e.labelIndex)) == e.label, e.label);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const bool requireLabels : {true, false}) {
    std::istringstream in(text);
    Cohort c;
    try {
      c = Cohort::parse(in, "/fuzz/cohort.csv", requireLabels);
    } catch (const DataError&) {
      continue;
    }
    checkConsistent(c, requireLabels);

    std::ostringstream out;
    c.write(out);
    std::istringstream back(out.str());
    Cohort again;
    try {
      again = Cohort::parse(back, "/elsewhere/copy.csv", requireLabels);
    } catch (const DataError& e) {
      FUZZ_CHECK(false, std::string("a written cohort does not read back: ") + e.what());
    }
    FUZZ_CHECK(again.slides.size() == c.slides.size(), out.str());
    FUZZ_CHECK(again.classes == c.classes, out.str());
    for (size_t i = 0; i < c.slides.size(); ++i) {
      const auto &a = c.slides[i], &b = again.slides[i];
      FUZZ_CHECK(a.slideId == b.slideId && a.path == b.path && a.label == b.label &&
                     a.split == b.split && a.patientId == b.patientId && a.mpp == b.mpp &&
                     a.labelIndex == b.labelIndex,
                 "slide " + std::to_string(i) + " changed in:\n" + out.str());
    }

    std::vector<std::string> reversed(c.classes.rbegin(), c.classes.rend());
    c.setClassOrder(reversed);  // every label listed once: must not throw
    checkConsistent(c, requireLabels);
  }
  return 0;
}
