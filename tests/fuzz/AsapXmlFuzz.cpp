// Fuzz target: ASAP XML annotations as CAMELYON ships them (wsi/AnnotationsAsap.cpp).
// Input = the file's text. Bad input must end in a DataError; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tests/fuzz/AnnotationsFuzz.h"
#include "wsi/Errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slidetrain::wsi;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Annotations a;
  try {
    a = Annotations::parseAsapXml(text, "fuzz.xml");
  } catch (const DataError&) {
    return 0;
  }
  fuzz::exercise(a);
  return 0;
}
