// JsonWriter: a stack of open containers decides where separators and indents go.
#include "wsi/JsonWriter.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace slidetrain::wsi {

std::string jsonNumber(double v, int significantDigits) {
  if (!std::isfinite(v)) return "null";
  // to_chars in general format with a precision is printf's %.<n>g in the "C" locale, so the
  // text does not depend on the process's LC_NUMERIC.
  char buf[40];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general,
                               significantDigits);
  return std::string(buf, r.ptr);
}

JsonWriter::JsonWriter(std::ostream& out, JsonStyle style) : out_(out), style_(std::move(style)) {
  if (style_.significantDigits < 1 || style_.significantDigits > 17)
    throw std::invalid_argument("JsonStyle::significantDigits must be in 1..17, got " +
                                std::to_string(style_.significantDigits));
}

std::string JsonWriter::indent(size_t frames) const {
  size_t n = 0;
  for (size_t i = 0; i < frames; ++i) n += stack_[i].layout == JsonLayout::OnePerLine ? 2 : 0;
  return std::string(n, ' ');
}

void JsonWriter::separator(Frame& f) {
  if (f.layout == JsonLayout::OnePerLine) out_ << (f.empty ? "\n" : ",\n") << indent(stack_.size());
  else if (!f.empty) out_ << style_.itemSeparator;
  f.empty = false;
}

void JsonWriter::beforeValue() {
  if (stack_.empty()) {
    if (done_) throw std::logic_error("JsonWriter: a second top-level value");
    return;
  }
  Frame& f = stack_.back();
  if (!f.object) return separator(f);
  if (!f.keyPending) throw std::logic_error("JsonWriter: a value inside an object needs a key");
  f.keyPending = false;  // the separator went out with the key
}

JsonWriter& JsonWriter::scalar(const std::string& text) {
  beforeValue();
  out_ << text;
  if (stack_.empty()) done_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin(bool object, JsonLayout layout) {
  beforeValue();
  out_ << (object ? '{' : '[');
  stack_.push_back({object, layout});
  return *this;
}

JsonWriter& JsonWriter::end(bool object) {
  if (stack_.empty() || stack_.back().object != object)
    throw std::logic_error(std::string("JsonWriter: ") + (object ? "endObject" : "endArray") +
                           " does not match the open container");
  if (stack_.back().keyPending) throw std::logic_error("JsonWriter: a key without a value");
  if (stack_.back().layout == JsonLayout::OnePerLine) out_ << '\n' << indent(stack_.size() - 1);
  out_ << (object ? '}' : ']');
  stack_.pop_back();
  if (stack_.empty()) done_ = true;
  return *this;
}

JsonWriter& JsonWriter::beginObject(JsonLayout layout) { return begin(true, layout); }
JsonWriter& JsonWriter::endObject() { return end(true); }
JsonWriter& JsonWriter::beginArray(JsonLayout layout) { return begin(false, layout); }
JsonWriter& JsonWriter::endArray() { return end(false); }

JsonWriter& JsonWriter::key(const std::string& name) {
  if (stack_.empty() || !stack_.back().object)
    throw std::logic_error("JsonWriter: key \"" + name + "\" outside an object");
  Frame& f = stack_.back();
  if (f.keyPending) throw std::logic_error("JsonWriter: key \"" + name + "\" after a key");
  separator(f);
  out_ << jsonQuote(name) << style_.keySeparator;
  f.keyPending = true;
  return *this;
}

JsonWriter& JsonWriter::value(const std::string& s) { return scalar(jsonQuote(s)); }
JsonWriter& JsonWriter::value(const char* s) { return scalar(jsonQuote(s)); }
JsonWriter& JsonWriter::value(double v) { return scalar(jsonNumber(v, style_.significantDigits)); }
JsonWriter& JsonWriter::value(bool v) { return scalar(v ? "true" : "false"); }
JsonWriter& JsonWriter::value(std::nullptr_t) { return scalar("null"); }
JsonWriter& JsonWriter::rawValue(const std::string& json) { return scalar(json); }

}  // namespace slidetrain::wsi
