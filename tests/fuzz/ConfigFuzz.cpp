// Fuzz target: the YAML config and `key=value` overrides (src/config/Config.h, Settings.h). Input = YAML text,
// optionally followed by a line "#--- overrides" and one override per line. Bad input must end
// in a ConfigError; anything else is a bug. An accepted config must read back every key with its
// type and within its schema bounds, and its resolved YAML (run_dir/config.yaml) must parse to
// the same config.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "src/config/Config.h"
#include "src/config/Settings.h"
#include "tests/fuzz/FuzzCheck.h"

using slidetrain::Config;
using slidetrain::ConfigError;
using slidetrain::KeySpec;
using slidetrain::KeyType;

namespace {

void checkValues(const Config& c) {
  auto inBounds = [&](const KeySpec& s, double v) {
    FUZZ_CHECK(v >= s.min && v <= s.max, s.key + " = " + c.valueText(s.key));
  };
  for (const auto& s : slidetrain::configSchema()) {
    switch (s.type) {
      case KeyType::Int: inBounds(s, double(c.getInt(s.key))); break;
      case KeyType::Float: inBounds(s, c.getFloat(s.key)); break;
      case KeyType::OptFloat:
        if (const auto v = c.getOptFloat(s.key)) inBounds(s, *v);
        break;
      case KeyType::Bool: (void)c.getBool(s.key); break;
      case KeyType::String: (void)c.getString(s.key); break;
      case KeyType::FloatList: (void)c.getFloatList(s.key); break;
      case KeyType::StringList: (void)c.getStringList(s.key); break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::string marker = "#--- overrides\n";
  const size_t at = input.find(marker);
  const std::string yaml = input.substr(0, at);
  std::vector<std::string> overrides;
  if (at != std::string::npos) {
    std::istringstream lines(input.substr(at + marker.size()));
    for (std::string line; std::getline(lines, line);) overrides.push_back(line);
  }

  // optional: a default Config parses every schema default, too slow to make one in vain.
  std::optional<Config> c;
  try {
    c = Config::parse(yaml, "fuzz.yaml");
    c->applyOverrides(overrides);
  } catch (const ConfigError&) {
    return 0;
  }
  checkValues(*c);

  const std::string resolved = c->toYaml();
  std::optional<Config> again;
  try {
    again = Config::parse(resolved, "config.yaml");
  } catch (const ConfigError& e) {
    FUZZ_CHECK(false, std::string("the resolved config does not parse: ") + e.what() + "\n" +
                          resolved);
  }
  FUZZ_CHECK(again->toYaml() == resolved, "the resolved config changed on re-reading:\n" + resolved);

  // The typed sections (src/config/Settings.h): cross-key checks end in a ConfigError too.
  try {
    (void)slidetrain::Settings::parse(yaml, "fuzz.yaml", overrides);
  } catch (const ConfigError&) {
  }
  return 0;
}
