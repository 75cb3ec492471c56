#pragma once
// Shared by the fuzz targets: an invariant that fails aborts with what broke, so libFuzzer (and
// the corpus replay of the normal build) reports it as a crash with the input that caused it.
#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(cond, what)                                                                \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s: %s\n", __FILE__, __LINE__,     \
                   #cond, std::string(what).c_str());                                         \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)
