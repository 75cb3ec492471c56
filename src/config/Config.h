#pragma once
// Config: one tree of settings parsed from YAML with a fixed schema (Schema.cpp). Unknown
// keys and wrong types are rejected with the dotted key and the YAML line; every key has a
// default, so a config file only says what differs. `key=value` overrides from the command
// line go through the same checks.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "src/config/Errors.h"

namespace slidetrain {

enum class KeyType { Int, Float, Bool, String, OptFloat, FloatList, StringList };

struct KeySpec {
  std::string key;          ///< dotted, e.g. "train.batch_size"
  KeyType type;
  std::string defaultYaml;  ///< default as a YAML scalar/flow value ("null" for none)
  std::string help;
  std::vector<std::string> choices;  ///< allowed values for String keys (empty: any)
  double min = -1e300;               ///< bounds for numbers
  double max = 1e300;
};

/// Every key slidetrain understands.
const std::vector<KeySpec>& configSchema();

class Config {
 public:
  /// Defaults only.
  Config();
  /// Deep copies: overriding a copy never changes the original.
  Config(const Config& other);
  Config& operator=(const Config& other);
  Config(Config&&) = default;
  Config& operator=(Config&&) = default;
  /// Reads a YAML file; throws ConfigError naming the file, dotted key and line.
  static Config load(const std::string& path);
  /// Parses YAML text (`origin` names it in errors).
  static Config parse(const std::string& yamlText, const std::string& origin);
  /// Applies "a.b=value" overrides (value parsed as YAML).
  void applyOverrides(const std::vector<std::string>& overrides);

  int64_t getInt(const std::string& key) const;
  double getFloat(const std::string& key) const;
  bool getBool(const std::string& key) const;
  std::string getString(const std::string& key) const;
  std::optional<double> getOptFloat(const std::string& key) const;
  std::vector<double> getFloatList(const std::string& key) const;
  std::vector<std::string> getStringList(const std::string& key) const;

  /// The value of `key` as one line of YAML (flow style), e.g. "0.01" or "[0.5, 0.5, 0.5]".
  std::string valueText(const std::string& key) const;
  /// Keys whose value differs from the schema default, in schema order.
  std::vector<std::string> nonDefaultKeys() const;
  /// Resolved config as YAML (every key, defaults included).
  std::string toYaml() const;
  /// Markdown table of every key with type, default and help (docs/config.md is generated).
  static std::string schemaMarkdown();

 private:
  void set(const std::string& key, const YAML::Node& value, const std::string& where);
  const YAML::Node& node(const std::string& key, KeyType type) const;
  std::map<std::string, YAML::Node> values_;
};

}  // namespace slidetrain
