#pragma once
// What a call throws, for tests of error messages: EXPECT_NE(errorOf([&] { ... }).find("the
// file's name"), std::string::npos) << errorOf(...).
#include <exception>
#include <functional>
#include <string>

namespace slidetrain::test {

/// The message of the std::exception that f throws, or "(no exception)".
inline std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace slidetrain::test
