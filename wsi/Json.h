#pragma once
// A minimal JSON reader for annotation files (GeoJSON), so the wsi layer needs no JSON library.
// Numbers are doubles; objects keep keys in a map. Errors are DataError naming source:line:col.
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace slidetrain::wsi {

struct JsonValue {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::map<std::string, JsonValue> object;

  bool isObject() const { return type == Type::Object; }
  bool isArray() const { return type == Type::Array; }
  bool isString() const { return type == Type::String; }
  bool isNumber() const { return type == Type::Number; }
  /// Member `key` of an object, or nullptr when absent or when this is not an object.
  const JsonValue* find(const std::string& key) const;
};

/// Parses a whole JSON document; `source` (a file name) is used in error messages.
JsonValue parseJson(const std::string& text, const std::string& source);

/// Writes `s` as a JSON string literal (with quotes and escapes).
std::string jsonQuote(const std::string& s);

}  // namespace slidetrain::wsi
