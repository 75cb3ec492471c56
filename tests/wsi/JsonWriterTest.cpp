// JsonWriter: separators, nesting, escaping, number text (the %.<n>g rule of the JSON files the
// trainer writes) and round trips through parseJson.
#include "wsi/JsonWriter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace slidetrain::wsi {
namespace {

/// The same document in any style: nested objects and arrays, empty ones, every scalar type.
std::string sample(const JsonStyle& style) {
  std::ostringstream out;
  JsonWriter w(out, style);
  w.beginObject();
  w.key("n").value(3).key("x").value(0.5).key("flags").beginArray().value(true).value(false);
  w.value(nullptr).endArray();
  w.key("empty_object").beginObject().endObject().key("empty_array").beginArray().endArray();
  w.key("rows").beginArray();
  for (int r = 0; r < 2; ++r) w.beginArray().value(r).value(r + 10).endArray();
  w.endArray();
  w.key("inner").beginObject().key("name").value("a").key("list").beginArray();
  w.beginObject().key("k").value("v").endObject().endArray().endObject();
  w.endObject();
  EXPECT_TRUE(w.done());
  return out.str();
}

TEST(JsonWriterTest, NestingAndCommasInBothStyles) {
  EXPECT_EQ(sample(JsonStyle()),
            R"({"n": 3, "x": 0.5, "flags": [true, false, null], "empty_object": {}, )"
            R"("empty_array": [], "rows": [[0, 10], [1, 11]], )"
            R"("inner": {"name": "a", "list": [{"k": "v"}]}})");
  EXPECT_EQ(sample(JsonStyle::spaced()), sample(JsonStyle()));
  EXPECT_EQ(sample(JsonStyle::compact()),
            R"({"n":3,"x":0.5,"flags":[true,false,null],"empty_object":{},)"
            R"("empty_array":[],"rows":[[0,10],[1,11]],)"
            R"("inner":{"name":"a","list":[{"k":"v"}]}})");
  JsonStyle custom;
  custom.itemSeparator = " ,";
  custom.keySeparator = " = ";
  std::ostringstream out;
  JsonWriter(out, custom).beginObject().key("a").value(1).key("b").value(2).endObject();
  EXPECT_EQ(out.str(), R"({"a" = 1 ,"b" = 2})");
}

TEST(JsonWriterTest, DocumentsParseBack) {
  for (const JsonStyle& style : {JsonStyle::spaced(), JsonStyle::compact()}) {
    const JsonValue v = parseJson(sample(style), "sample");
    ASSERT_TRUE(v.isObject());
    EXPECT_EQ(v.find("n")->number, 3);
    EXPECT_EQ(v.find("x")->number, 0.5);
    ASSERT_EQ(v.find("flags")->array.size(), 3u);
    EXPECT_TRUE(v.find("flags")->array[0].boolean);
    EXPECT_EQ(v.find("flags")->array[2].type, JsonValue::Type::Null);
    EXPECT_TRUE(v.find("empty_object")->isObject());
    EXPECT_EQ(v.find("rows")->array[1].array[1].number, 11);
    EXPECT_EQ(v.find("inner")->find("list")->array[0].find("k")->string, "v");
  }
}

TEST(JsonWriterTest, StringsAndKeysAreEscaped) {
  const std::string nasty = "q\"uote \\back\nline\ttab\x01\x1f \xC3\xA9 /";
  std::ostringstream out;
  JsonWriter w(out);
  w.beginObject().key(nasty).value(nasty).key("c").value("plain").endObject();
  EXPECT_EQ(out.str(), "{" + jsonQuote(nasty) + ": " + jsonQuote(nasty) + ", \"c\": \"plain\"}");
  EXPECT_EQ(jsonQuote(nasty), "\"q\\\"uote \\\\back\\nline\\u0009tab\\u0001\\u001f \xC3\xA9 /\"");
  const JsonValue v = parseJson(out.str(), "escaped");
  ASSERT_NE(v.find(nasty), nullptr);
  EXPECT_EQ(v.find(nasty)->string, nasty);
  EXPECT_EQ(v.find("c")->string, "plain");  // a const char* is a string, not a bool
}

TEST(JsonWriterTest, NonFiniteNumbersAreNull) {
  const double inf = std::numeric_limits<double>::infinity();
  std::ostringstream out;
  JsonWriter w(out);
  w.beginArray().value(std::nan("")).value(inf).value(-inf).value(-std::nan("")).value(1.5);
  w.endArray();
  EXPECT_EQ(out.str(), "[null, null, null, null, 1.5]");
  EXPECT_EQ(jsonNumber(NAN), "null");
  EXPECT_EQ(jsonNumber(-inf, 6), "null");
  const JsonValue v = parseJson(out.str(), "nan");
  EXPECT_EQ(v.array[0].type, JsonValue::Type::Null);
}

TEST(JsonWriterTest, DoublesFollowPrintfSignificantDigits) {
  // The rule of src/Metrics.cpp (%.10g), src/TrainReport.cpp (%.8g), src/CrossValidation.cpp
  // (%.6g) and the GeoJSON writer (ostream precision 10, i.e. %.10g).
  const double values[] = {0,      -0.0,          1,          -1,       0.1,    0.1 + 0.2,
                           1.0 / 3, 2.0 / 3,      123456789.123456, 1e20,   1e-7,   -2.5e-300,
                           5e-324, 1.7976931348623157e308, 1e15, 123456.5, 0.000123456789012,
                           100,    1e100,         -98765.4321};
  for (int digits : {10, 8, 6, 1, 17}) {
    for (double v : values) {
      char ref[64];
      std::snprintf(ref, sizeof ref, "%.*g", digits, v);
      EXPECT_EQ(jsonNumber(v, digits), ref) << v << " with " << digits << " digits";
    }
  }
  EXPECT_EQ(jsonNumber(0.1 + 0.2), "0.3");
  EXPECT_EQ(jsonNumber(1e20), "1e+20");
  EXPECT_EQ(jsonNumber(-0.0), "-0");
  EXPECT_EQ(jsonNumber(1.0 / 3), "0.3333333333");
  EXPECT_EQ(jsonNumber(1.0 / 3, 6), "0.333333");

  JsonStyle eight;
  eight.significantDigits = 8;
  std::ostringstream out;
  JsonWriter(out, eight).beginArray().value(1.0 / 3).value(2).endArray();
  EXPECT_EQ(out.str(), "[0.33333333, 2]");
}

TEST(JsonWriterTest, DoublesWithAtMostTenDigitsRoundTrip) {
  const double values[] = {0.5, -2.25, 0.1, 0.3, 123456.789, 1e-7, 6.02214076e23, -1e300,
                           4294967296, 0.0001220703125, 3.141592654};
  std::ostringstream out;
  JsonWriter w(out);
  w.beginArray();
  for (double v : values) w.value(v);
  w.endArray();
  const JsonValue back = parseJson(out.str(), "doubles");
  ASSERT_EQ(back.array.size(), std::size(values));
  for (size_t i = 0; i < back.array.size(); ++i) EXPECT_EQ(back.array[i].number, values[i]);
  // More digits than the style keeps are rounded, as the files always were.
  EXPECT_EQ(parseJson(jsonNumber(3.14159265358979), "pi").number, 3.141592654);
}

TEST(JsonWriterTest, IntegersAreExact) {
  std::ostringstream out;
  JsonWriter w(out, JsonStyle::compact());
  w.beginArray().value(std::numeric_limits<int64_t>::max());
  w.value(std::numeric_limits<int64_t>::min());
  w.value(std::numeric_limits<uint64_t>::max()).value(-7).value(size_t(42)).value(int32_t(0));
  w.endArray();
  EXPECT_EQ(out.str(),
            "[9223372036854775807,-9223372036854775808,18446744073709551615,-7,42,0]");
}

TEST(JsonWriterTest, RawValuesCompose) {
  std::ostringstream inner;
  JsonWriter(inner, JsonStyle::compact()).beginObject().key("tp").value(3).endObject();
  std::ostringstream out;
  JsonWriter w(out);
  w.beginObject().key("epoch").value(1).key("train").rawValue(inner.str());
  w.key("list").beginArray().rawValue("[1,2]").rawValue("null").endArray().endObject();
  EXPECT_EQ(out.str(), R"({"epoch": 1, "train": {"tp":3}, "list": [[1,2], null]})");
}

TEST(JsonWriterTest, OnePerLineLayout) {
  std::ostringstream out;
  JsonWriter w(out);
  w.beginObject().key("features").beginArray(JsonLayout::OnePerLine);
  w.value(1).beginObject(JsonLayout::OnePerLine).key("a").value(2).key("b").value(3).endObject();
  w.beginArray(JsonLayout::OnePerLine).endArray().endArray().endObject();
  EXPECT_EQ(out.str(),
            "{\"features\": [\n"
            "  1,\n"
            "  {\n"
            "    \"a\": 2,\n"
            "    \"b\": 3\n"
            "  },\n"
            "  [\n"
            "  ]\n"
            "]}");
  EXPECT_NO_THROW(parseJson(out.str(), "lines"));
}

TEST(JsonWriterTest, MisuseThrows) {
  std::ostringstream out;
  {
    JsonWriter w(out);
    w.beginObject();
    EXPECT_THROW(w.value(1), std::logic_error);  // no key
    EXPECT_THROW(w.endArray(), std::logic_error);
    w.key("a");
    EXPECT_THROW(w.key("b"), std::logic_error);  // key after key
    EXPECT_THROW(w.endObject(), std::logic_error);  // key without value
  }
  {
    JsonWriter w(out);
    w.beginArray();
    EXPECT_THROW(w.key("a"), std::logic_error);
    EXPECT_THROW(w.endObject(), std::logic_error);
    w.endArray();
    EXPECT_TRUE(w.done());
    EXPECT_THROW(w.value(2), std::logic_error);  // a second top-level value
    EXPECT_THROW(w.endArray(), std::logic_error);
  }
  JsonStyle bad;
  bad.significantDigits = 0;
  EXPECT_THROW(JsonWriter(out, bad), std::invalid_argument);
  bad.significantDigits = 18;
  EXPECT_THROW(JsonWriter(out, bad), std::invalid_argument);
  // A scalar is a whole document too.
  std::ostringstream one;
  JsonWriter w(one);
  EXPECT_FALSE(w.done());
  w.value("x");
  EXPECT_TRUE(w.done());
  EXPECT_EQ(one.str(), "\"x\"");
}

}  // namespace
}  // namespace slidetrain::wsi
