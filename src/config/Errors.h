#pragma once
#include <stdexcept>
#include <string>

namespace slidetrain {

/// A bad configuration: what() names the dotted key, and the YAML line when it came from a file.
struct ConfigError : std::runtime_error {
  explicit ConfigError(const std::string& msg) : std::runtime_error(msg) {}
};

/// A command-line or environment problem (missing program, bad arguments).
struct UsageError : std::runtime_error {
  explicit UsageError(const std::string& msg) : std::runtime_error(msg) {}
};

}  // namespace slidetrain
