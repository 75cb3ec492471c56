#pragma once
// JsonWriter: streams one JSON value with separators inserted for the caller, so JSON output is
// written in one place rather than by hand with <<. Strings and keys are escaped by jsonQuote
// (Json.h); doubles are %.<n>g with NaN/Inf as null; the separators are a JsonStyle, so existing
// files ("a": 1, "b": 2) and compact text ({"a":1,"b":2}) both come out byte for byte.
#include <cstddef>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "wsi/Json.h"

namespace slidetrain::wsi {

/// Separators and number precision of a JsonWriter. The defaults give the layout of Python's
/// json.dumps ({"a": 1, "b": [1, 2]}); compact() gives {"a":1,"b":[1,2]}.
struct JsonStyle {
  std::string itemSeparator = ", ";  ///< between members and between elements
  std::string keySeparator = ": ";   ///< between a key and its value
  int significantDigits = 10;        ///< doubles as printf's %.<n>g (1..17)
  static JsonStyle spaced() { return {}; }
  static JsonStyle compact() { return {",", ":"}; }
};

/// Layout of one object or array. OnePerLine puts each member on its own line, indented two
/// spaces per enclosing OnePerLine container, and the closing bracket on a line of its own:
/// "[\n  1,\n  2\n]" ("[\n]" when empty).
enum class JsonLayout { Inline, OnePerLine };

/// Text of a double as JsonWriter writes it: %.<significantDigits>g in the "C" locale, and
/// null for NaN and infinities (JSON has neither).
std::string jsonNumber(double v, int significantDigits = 10);

/// Streams one JSON value to `out`, inserting separators; strings and keys go through
/// jsonQuote. Misuse (a value without a key inside an object, a key inside an array, a
/// mismatched end, a second top-level value) throws std::logic_error.
///
///   JsonWriter w(out);
///   w.beginObject().key("n").value(3).key("xs").beginArray().value(0.5).endArray().endObject();
///   // {"n": 3, "xs": [0.5]}
class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& out, JsonStyle style = {});

  JsonWriter& beginObject(JsonLayout layout = JsonLayout::Inline);
  JsonWriter& endObject();
  JsonWriter& beginArray(JsonLayout layout = JsonLayout::Inline);
  JsonWriter& endArray();
  /// The next member's name; its value follows with value(), rawValue() or begin*().
  JsonWriter& key(const std::string& name);

  JsonWriter& value(const std::string& s);
  JsonWriter& value(const char* s);
  JsonWriter& value(double v);  ///< jsonNumber(v, style.significantDigits)
  JsonWriter& value(bool v);
  JsonWriter& value(std::nullptr_t);
  template <typename Int,
            std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>, int> = 0>
  JsonWriter& value(Int v) {
    return scalar(std::to_string(v));
  }
  /// A value that is already JSON text (e.g. another writer's output), written as is.
  JsonWriter& rawValue(const std::string& json);

  /// True once a complete top-level value has been written.
  bool done() const { return done_; }

 private:
  struct Frame {
    bool object;
    JsonLayout layout;
    bool empty = true;
    bool keyPending = false;
  };
  JsonWriter& scalar(const std::string& text);
  JsonWriter& begin(bool object, JsonLayout layout);
  JsonWriter& end(bool object);
  void beforeValue();
  void separator(Frame& f);
  std::string indent(size_t frames) const;

  std::ostream& out_;
  JsonStyle style_;
  std::vector<Frame> stack_;
  bool done_ = false;
};

}  // namespace slidetrain::wsi
