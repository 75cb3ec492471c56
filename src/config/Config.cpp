#include "src/config/Config.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

namespace slidetrain {

namespace {

const KeySpec* findSpec(const std::string& key) {
  for (const auto& s : configSchema())
    if (s.key == key) return &s;
  return nullptr;
}

bool isSectionPrefix(const std::string& prefix) {
  for (const auto& s : configSchema())
    if (s.key.rfind(prefix + ".", 0) == 0) return true;
  return false;
}

std::string typeName(KeyType t) {
  switch (t) {
    case KeyType::Int: return "integer";
    case KeyType::Float: return "number";
    case KeyType::Bool: return "boolean (true/false)";
    case KeyType::String: return "string";
    case KeyType::OptFloat: return "number or null";
    case KeyType::FloatList: return "list of numbers";
    case KeyType::StringList: return "list of strings";
  }
  return "?";
}

std::string shown(const YAML::Node& n) {
  if (n.IsScalar()) return "\"" + n.Scalar() + "\"";
  if (n.IsNull()) return "null";
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

// Checks `n` against the spec; returns an empty string when valid, else the reason.
std::string check(const KeySpec& s, const YAML::Node& n) {
  auto numberOk = [&](const YAML::Node& x, bool integer, double* out) {
    if (!x.IsScalar()) return false;
    try {
      if (integer) {
        *out = static_cast<double>(x.as<int64_t>());
      } else {
        *out = x.as<double>();
      }
      return true;
    } catch (const YAML::Exception&) {
      return false;
    }
  };
  auto bounded = [&](double v) -> std::string {
    if (v < s.min || v > s.max) {
      std::ostringstream o;
      o << "expected " << typeName(s.type) << " in [" << s.min << ", " << s.max << "], got " << v;
      return o.str();
    }
    return "";
  };
  const std::string bad = "expected " + typeName(s.type) + ", got " + shown(n);
  double v = 0;
  switch (s.type) {
    case KeyType::Int:
      return numberOk(n, true, &v) ? bounded(v) : bad;
    case KeyType::Float:
      return numberOk(n, false, &v) ? bounded(v) : bad;
    case KeyType::OptFloat:
      if (n.IsNull()) return "";
      return numberOk(n, false, &v) ? bounded(v) : bad;
    case KeyType::Bool:
      try {
        if (n.IsScalar()) {
          (void)n.as<bool>();
          return "";
        }
      } catch (const YAML::Exception&) {
      }
      return bad;
    case KeyType::String:
      if (n.IsNull()) return "";  // empty string
      if (!n.IsScalar()) return bad;
      if (!s.choices.empty() &&
          std::find(s.choices.begin(), s.choices.end(), n.Scalar()) == s.choices.end()) {
        std::string all;
        for (const auto& c : s.choices) all += (all.empty() ? "" : ", ") + c;
        return "expected one of {" + all + "}, got " + shown(n);
      }
      return "";
    case KeyType::FloatList:
      if (!n.IsSequence()) return bad;
      for (const auto& x : n)
        if (!numberOk(x, false, &v)) return bad;
      return "";
    case KeyType::StringList:
      if (!n.IsSequence()) return bad;
      for (const auto& x : n)
        if (!x.IsScalar()) return bad;
      return "";
  }
  return bad;
}

void walk(const YAML::Node& n, const std::string& prefix, const std::string& origin,
          const std::function<void(const std::string&, const YAML::Node&, const std::string&)>& f) {
  for (const auto& kv : n) {
    const std::string name = kv.first.Scalar();
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    const std::string where = origin + " line " + std::to_string(kv.first.Mark().line + 1);
    if (kv.second.IsMap() && !findSpec(key)) {
      if (!isSectionPrefix(key))
        throw ConfigError(where + ": unknown section '" + key + "' (see docs/config.md)");
      walk(kv.second, key, origin, f);
    } else {
      f(key, kv.second, where);
    }
  }
}

}  // namespace

Config::Config() {
  // The defaults are parsed once; each Config gets its own clones (see operator=).
  static const std::map<std::string, YAML::Node> defaults = [] {
    std::map<std::string, YAML::Node> d;
    // Assigned, not emplaced: Node::operator= creates the node an empty default ("") lacks,
    // without which it would emit nothing at all in toYaml().
    for (const auto& s : configSchema()) d[s.key] = YAML::Load(s.defaultYaml);
    return d;
  }();
  for (const auto& [k, v] : defaults) values_.emplace(k, YAML::Clone(v));
}

void Config::set(const std::string& key, const YAML::Node& value, const std::string& where) {
  const KeySpec* s = findSpec(key);
  if (!s) {
    // Suggest the closest key of the same section to help with typos.
    std::string hint;
    const auto dot = key.rfind('.');
    const std::string section = dot == std::string::npos ? "" : key.substr(0, dot + 1);
    for (const auto& c : configSchema())
      if (!section.empty() && c.key.rfind(section, 0) == 0) hint += (hint.empty() ? "" : ", ") + c.key;
    throw ConfigError(where + ": unknown key '" + key + "'" +
                      (hint.empty() ? "" : " (known in this section: " + hint + ")"));
  }
  const std::string why = check(*s, value);
  if (!why.empty()) throw ConfigError(where + ": " + key + ": " + why);
  // Rebind, never assign through: YAML::Node's operator= writes into the node it refers to,
  // which a copied Config shares with its original.
  values_.insert_or_assign(key, YAML::Clone(value));
}

Config::Config(const Config& other) { *this = other; }

Config& Config::operator=(const Config& other) {
  if (this == &other) return *this;
  // A deep copy: YAML::Node copies are references, so a shallow copy's overrides would change
  // the original (cv's per-fold run_dir leaked into the caller's config that way).
  std::map<std::string, YAML::Node> copy;
  for (const auto& [k, v] : other.values_) copy.emplace(k, YAML::Clone(v));
  values_.swap(copy);
  return *this;
}

Config Config::parse(const std::string& yamlText, const std::string& origin) {
  Config c;
  YAML::Node root;
  try {
    root = YAML::Load(yamlText);
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + " line " + std::to_string(e.mark.line + 1) + ": YAML syntax: " + e.msg);
  }
  if (root.IsNull()) return c;
  if (!root.IsMap()) throw ConfigError(origin + ": expected a mapping of keys at the top level");
  walk(root, "", origin,
       [&](const std::string& k, const YAML::Node& v, const std::string& w) { c.set(k, v, w); });
  return c;
}

Config Config::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

void Config::applyOverrides(const std::vector<std::string>& overrides) {
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("override '" + o + "': expected key=value");
    YAML::Node v;
    try {
      v = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw ConfigError("override '" + o + "': " + e.msg);
    }
    set(o.substr(0, eq), v, "override '" + o + "'");
  }
}

const YAML::Node& Config::node(const std::string& key, KeyType type) const {
  const KeySpec* s = findSpec(key);
  if (!s) throw ConfigError("internal: unknown key '" + key + "' requested");
  if (s->type != type) throw ConfigError("internal: key '" + key + "' read as the wrong type");
  return values_.at(key);
}

int64_t Config::getInt(const std::string& key) const { return node(key, KeyType::Int).as<int64_t>(); }
double Config::getFloat(const std::string& key) const { return node(key, KeyType::Float).as<double>(); }
bool Config::getBool(const std::string& key) const { return node(key, KeyType::Bool).as<bool>(); }
std::string Config::getString(const std::string& key) const {
  const auto& n = node(key, KeyType::String);
  return n.IsNull() ? std::string() : n.Scalar();
}
std::optional<double> Config::getOptFloat(const std::string& key) const {
  const auto& n = node(key, KeyType::OptFloat);
  if (n.IsNull()) return std::nullopt;
  return n.as<double>();
}
std::vector<double> Config::getFloatList(const std::string& key) const {
  return node(key, KeyType::FloatList).as<std::vector<double>>();
}
std::vector<std::string> Config::getStringList(const std::string& key) const {
  return node(key, KeyType::StringList).as<std::vector<std::string>>();
}

namespace {

/// Keys grouped by their dotted path, in schema order, for nested YAML output.
struct KeyTree {
  std::vector<std::pair<std::string, KeyTree>> children;
  const YAML::Node* value = nullptr;

  KeyTree& child(const std::string& name) {
    for (auto& c : children)
      if (c.first == name) return c.second;
    children.emplace_back(name, KeyTree{});
    return children.back().second;
  }
  void emit(YAML::Emitter& e) const {
    e << YAML::BeginMap;
    for (const auto& [name, sub] : children) {
      e << YAML::Key << name << YAML::Value;
      if (sub.value)
        e << *sub.value;
      else
        sub.emit(e);
    }
    e << YAML::EndMap;
  }
};

}  // namespace

std::string Config::toYaml() const {
  // Nested output grouped by section, in schema order: every dot is a level
  // ("train.early_stopping.metric" -> train: {early_stopping: {metric: ...}}). Built with the
  // emitter: yaml-cpp does not attach a child created by operator[] to its parent until the
  // child itself is assigned, which left the output empty.
  KeyTree root;
  for (const auto& s : configSchema()) {
    KeyTree* t = &root;
    size_t from = 0;
    for (size_t dot; (dot = s.key.find('.', from)) != std::string::npos; from = dot + 1)
      t = &t->child(s.key.substr(from, dot - from));
    t->child(s.key.substr(from)).value = &values_.at(s.key);
  }
  YAML::Emitter e;
  root.emit(e);
  return std::string(e.c_str()) + "\n";
}

std::string Config::valueText(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw ConfigError("unknown key '" + key + "'");
  YAML::Emitter e;
  e << YAML::Flow << it->second;
  return e.c_str();
}

namespace {
// A null node dumps as "~" or as "" depending on how it was made (a cloned empty default dumps
// ""), which made every empty-string key of a copied config look changed.
std::string comparable(const YAML::Node& n) { return n.IsNull() ? std::string("~") : YAML::Dump(n); }
}  // namespace

std::vector<std::string> Config::nonDefaultKeys() const {
  std::vector<std::string> out;
  for (const auto& s : configSchema())
    if (comparable(values_.at(s.key)) != comparable(YAML::Load(s.defaultYaml))) out.push_back(s.key);
  return out;
}

std::string Config::schemaMarkdown() {
  std::ostringstream o;
  o << "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& s : configSchema()) {
    std::string help = s.help;
    if (!s.choices.empty()) {
      help += " (one of:";
      for (const auto& c : s.choices) help += " `" + c + "`";
      help += ")";
    }
    o << "| `" << s.key << "` | " << typeName(s.type) << " | `"
      << (s.defaultYaml.empty() ? "\"\"" : s.defaultYaml) << "` | " << help << " |\n";
  }
  return o.str();
}

}  // namespace slidetrain
