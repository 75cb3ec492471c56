// GeoJSON annotations as QuPath exports them, and label lookup for patch centres.
#include "wsi/Annotations.h"

#include <gtest/gtest.h>

#include <regex>

#include "tests/wsi/WsiTestUtil.h"
#include "wsi/Errors.h"

namespace slidetrain::wsi {
namespace {

const char* kQuPath = R"({
  "type": "FeatureCollection",
  "features": [
    {"type": "Feature", "id": "a1",
     "geometry": {"type": "Polygon", "coordinates": [
        [[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]],
        [[40, 40], [60, 40], [60, 60], [40, 60], [40, 40]]]},
     "properties": {"objectType": "annotation",
                    "classification": {"name": "Tumor", "color": [200, 0, 0]}}},
    {"type": "Feature",
     "geometry": {"type": "MultiPolygon", "coordinates": [
        [[[200, 0], [300, 0], [250, 80]]],
        [[[200, 200], [260, 200], [260, 260], [200, 260]]]]},
     "properties": {"classification": {"name": "Stroma \u00e9"}}},
    {"type": "Feature", "geometry": {"type": "Polygon",
     "coordinates": [[[0, 0], [1000, 0], [1000, 1000]]]}, "properties": {}},
    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [5, 5]},
     "properties": {"classification": {"name": "Tumor"}}},
    {"type": "Feature", "geometry": {"type": "Polygon",
     "coordinates": [[[90, 90], [120, 90], [120, 120], [90, 120]]]},
     "properties": {"classification": {"name": "Necrosis"}}}
  ]
})";

TEST(AnnotationsTest, QuPathPolygonsHolesAndMultiPolygons) {
  const Annotations a = Annotations::parseGeoJson(kQuPath, "test.geojson");
  ASSERT_EQ(a.polygons().size(), 4u);  // unclassified polygon and point are skipped
  EXPECT_EQ(a.classNames(), (std::vector<std::string>{"Necrosis", "Stroma \xC3\xA9", "Tumor"}));
  EXPECT_EQ(a.labelAt(10, 10), "Tumor");
  EXPECT_EQ(a.labelAt(50, 50), "");  // in the hole
  EXPECT_EQ(a.labelAt(250, 20), "Stroma \xC3\xA9");
  EXPECT_EQ(a.labelAt(230, 230), "Stroma \xC3\xA9");
  EXPECT_EQ(a.labelAt(210, 70), "");  // beside the triangle
  EXPECT_EQ(a.labelAt(95, 95), "Necrosis");  // overlap: the later feature is on top
  EXPECT_EQ(a.labelAt(-1, 10), "");
  EXPECT_NEAR(a.polygons()[0].area(), 100 * 100 - 20 * 20, 1e-9);
}

TEST(AnnotationsTest, WriteThenReadGivesTheSamePolygons) {
  test::TempDir dir;
  const Annotations a = Annotations::parseGeoJson(kQuPath, "test.geojson");
  a.writeGeoJson(dir.file("out.geojson"));
  const Annotations b = Annotations::readGeoJson(dir.file("out.geojson"));
  ASSERT_EQ(b.polygons().size(), a.polygons().size());
  for (size_t i = 0; i < a.polygons().size(); ++i) {
    EXPECT_EQ(b.polygons()[i].className, a.polygons()[i].className);
    EXPECT_EQ(b.polygons()[i].rings, a.polygons()[i].rings);
  }
  // A single Feature and a bare array of features are accepted too.
  const Annotations one = Annotations::parseGeoJson(
      R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":[[[0,0],[4,0],[0,4]]]},
          "properties":{"classification":{"name":"tumor"}}})", "one");
  EXPECT_EQ(one.labelAt(1, 1), "tumor");
  EXPECT_EQ(Annotations::parseGeoJson("[]", "empty").polygons().size(), 0u);
}

TEST(AnnotationsTest, BadFilesNameFileAndPosition) {
  try {
    Annotations::parseGeoJson("{\n  \"type\": \"FeatureCollection\",\n  \"features\": [1,, 2]\n}",
                              "bad.geojson");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_TRUE(std::regex_search(e.what(), std::regex("^bad\\.geojson:3:.*invalid JSON")))
        << e.what();
  }
  EXPECT_THROW(Annotations::parseGeoJson(R"({"type":"Feature","geometry":{"type":"Polygon",
      "coordinates":[[[0,0],[1,1]]]},"properties":{"classification":{"name":"x"}}})", "f"),
               DataError);
  EXPECT_THROW(Annotations::parseGeoJson(R"({"type":"Topology"})", "f"), DataError);
  // Numbers as RFC 8259 writes them, and finite: strtod alone took 1e999 (an infinite vertex,
  // found by the geojson fuzz target), -nan, -inf and hex.
  const std::vector<std::pair<std::string, std::string>> numbers = {
      {"1e999", "1:23: invalid JSON: number 1e999 is out of range"},
      {"-1E+400", "1:23: invalid JSON: number -1E\\+400 is out of range"},
      {"-nan", "1:23: invalid JSON: bad number"},
      {"-Infinity", "1:23: invalid JSON: bad number"},
      {"0x10", "1:24: invalid JSON: expected ',' or ']'"},
      {"01", "1:24: invalid JSON: expected ',' or ']'"},
      {"1.", "1:23: invalid JSON: bad number: expected a digit after '.'"},
      {"2e", "1:23: invalid JSON: bad number: expected a digit in the exponent"},
      {"+1", "1:23: invalid JSON: unexpected character '\\+'"},
  };
  for (const auto& [number, pattern] : numbers) {
    const std::string text = R"({"coordinates": [[[0, )" + number + "]]]}";
    std::string message;
    try {
      Annotations::parseGeoJson(text, "n.geojson");
    } catch (const DataError& e) {
      message = e.what();
    }
    EXPECT_TRUE(std::regex_search(message, std::regex("^n\\.geojson:" + pattern)))
        << text << " -> " << message;
  }
  EXPECT_EQ(Annotations::parseGeoJson(
                R"({"type":"Feature","geometry":{"type":"Polygon","coordinates":
                    [[[-0,0],[1.5e3,0E0],[0.25,-1e-400]]]},
                    "properties":{"classification":{"name":"t"}}})", "ok")
                .polygons()[0].rings[0][1][0],
            1500.0);
  EXPECT_THROW(Annotations::readGeoJson("/nonexistent/a.geojson"), DataError);
}


// CAMELYON16-style ASAP XML: two tumour groups, an exclusion ("_2") cut out of the first polygon,
// a decimal-comma coordinate, out-of-order vertices, a Dot and an ungrouped polygon to ignore.
const char* kAsap = R"(<?xml version="1.0"?>
<ASAP_Annotations>
  <!-- exported by ASAP 1.9 -->
  <Annotations>
    <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="_0" Color="#F4FA58">
      <Coordinates>
        <Coordinate Order="0" X="0" Y="0" />
        <Coordinate Order="2" X="100" Y="100" />
        <Coordinate Order="1" X="100" Y="0" />
        <Coordinate Order="3" X="0" Y="100,0" />
      </Coordinates>
    </Annotation>
    <Annotation Name="Annotation 1" Type="Polygon" PartOfGroup="_2" Color="#64FE2E">
      <Coordinates>
        <Coordinate Order="0" X="40" Y="40" /><Coordinate Order="1" X="60" Y="40" />
        <Coordinate Order="2" X="60" Y="60" /><Coordinate Order="3" X="40" Y="60" />
      </Coordinates>
    </Annotation>
    <Annotation Name="A &amp; B" Type="Polygon" PartOfGroup="metastases">
      <Coordinates>
        <Coordinate Order="0" X="200" Y="0" /><Coordinate Order="1" X="300" Y="0" />
        <Coordinate Order="2" X="250" Y="80" />
      </Coordinates>
    </Annotation>
    <Annotation Name="dot" Type="Dot" PartOfGroup="_0">
      <Coordinates><Coordinate Order="0" X="500" Y="500" /></Coordinates>
    </Annotation>
    <Annotation Name="free" Type="Polygon" PartOfGroup="None">
      <Coordinates>
        <Coordinate Order="0" X="400" Y="0" /><Coordinate Order="1" X="500" Y="0" />
        <Coordinate Order="2" X="500" Y="100" />
      </Coordinates>
    </Annotation>
  </Annotations>
  <AnnotationGroups>
    <Group Name="_0" PartOfGroup="None" Color="#ff0000"><Attributes /></Group>
  </AnnotationGroups>
</ASAP_Annotations>
)";

TEST(AnnotationsTest, AsapXmlPolygonsGroupsAndExclusions) {
  const Annotations a = Annotations::parseAsapXml(kAsap, "c16.xml");
  ASSERT_EQ(a.polygons().size(), 2u);
  ASSERT_EQ(a.exclusions().size(), 1u);
  EXPECT_EQ(a.classNames(), (std::vector<std::string>{"Tumor", "metastases"}));
  // Vertices sorted by Order: a square, not a bow tie.
  EXPECT_NEAR(a.polygons()[0].area(), 100 * 100, 1e-9);
  EXPECT_EQ(a.labelAt(10, 10), "Tumor");
  EXPECT_EQ(a.labelAt(90, 50), "Tumor");
  EXPECT_EQ(a.labelAt(50, 50), "");  // inside the "_2" exclusion
  EXPECT_TRUE(a.excluded(50, 50));
  EXPECT_EQ(a.labelAt(250, 20), "metastases");
  EXPECT_EQ(a.labelAt(450, 10), "");  // ungrouped polygon ignored
  EXPECT_EQ(a.labelAt(500, 500), "");
  // An "Exclusion" class in GeoJSON is a hole too, and survives a write/read round trip.
  test::TempDir dir;
  test::writeText(dir.file("a.xml"), kAsap);
  const Annotations viaExt = Annotations::read(dir.file("a.xml"));
  EXPECT_EQ(viaExt.polygons().size(), 2u);
  viaExt.writeGeoJson(dir.file("a.geojson"));
  const Annotations back = Annotations::read(dir.file("a.geojson"));
  EXPECT_EQ(back.polygons().size(), 2u);
  EXPECT_EQ(back.exclusions().size(), 1u);
  EXPECT_EQ(back.labelAt(50, 50), "");
  EXPECT_EQ(back.labelAt(10, 10), "Tumor");
  EXPECT_THROW(Annotations::read(dir.file("a.txt")), DataError);
  EXPECT_TRUE(Annotations::isExclusionClass("Exclusion"));
  EXPECT_FALSE(Annotations::isExclusionClass("tumor"));
}

// The exact bytes writeGeoJson wrote before it used JsonWriter (same layout, %.10g numbers,
// escaped class names, exclusions after the labelled polygons); files stay byte-identical.
TEST(AnnotationsTest, WrittenGeoJsonBytesAreStable) {
  test::TempDir dir;
  auto bytes = [&](const Annotations& a) {
    a.writeGeoJson(dir.file("g.geojson"));
    const std::vector<uint8_t> b = test::readBytes(dir.file("g.geojson"));
    return std::string(b.begin(), b.end());
  };
  EXPECT_EQ(bytes(Annotations()), "{\"type\": \"FeatureCollection\", \"features\": [\n]}\n");

  Annotations a;
  AnnotationPolygon tumor;
  tumor.className = "Tumor";
  tumor.rings = {{{0, 0}, {100.5, 0}, {100.5, 1.0 / 3}, {0.1 + 0.2, 123456789.123456}},
                 {{1e20, -2.5}, {-0.0, 1e-7}, {42, 7}}};
  a.add(tumor);
  AnnotationPolygon odd;
  odd.className = "Stroma \"q\" \\ \n\t\x01 \xC3\xA9";
  odd.rings = {{{1, 2}, {3, 4}, {5, 6}, {1, 2}}};  // closing vertex dropped by add()
  a.add(odd);
  AnnotationPolygon hole;
  hole.className = "Exclusion";
  hole.rings = {{{10, 10}, {20, 10}, {20, 20}}};
  a.add(hole);
  EXPECT_EQ(bytes(a),
            "{\"type\": \"FeatureCollection\", \"features\": [\n"
            "  {\"type\": \"Feature\", \"geometry\": {\"type\": \"Polygon\", \"coordinates\": "
            "[[[0, 0], [100.5, 0], [100.5, 0.3333333333], [0.3, 123456789.1]], "
            "[[1e+20, -2.5], [-0, 1e-07], [42, 7]]]}, \"properties\": {\"objectType\": "
            "\"annotation\", \"classification\": {\"name\": \"Tumor\"}}},\n"
            "  {\"type\": \"Feature\", \"geometry\": {\"type\": \"Polygon\", \"coordinates\": "
            "[[[1, 2], [3, 4], [5, 6]]]}, \"properties\": {\"objectType\": \"annotation\", "
            "\"classification\": {\"name\": "
            "\"Stroma \\\"q\\\" \\\\ \\n\\u0009\\u0001 \xC3\xA9\"}}},\n"
            "  {\"type\": \"Feature\", \"geometry\": {\"type\": \"Polygon\", \"coordinates\": "
            "[[[10, 10], [20, 10], [20, 20]]]}, \"properties\": {\"objectType\": \"annotation\", "
            "\"classification\": {\"name\": \"Exclusion\"}}}\n"
            "]}\n");
}

TEST(AnnotationsTest, BadAsapXmlNamesFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<Annotations></Annotations>", "not an ASAP annotation file"},
      {"<ASAP_Annotations>\n<Annotation Type=\"Polygon\" PartOfGroup=\"t\">\n"
       "<Coordinate Order=\"0\" X=\"abc\" Y=\"1\"/>\n</Annotation></ASAP_Annotations>",
       "^x\\.xml:3: <Coordinate> X=\"abc\" is not a number"},
      {"<ASAP_Annotations>\n<Annotation Type=\"Polygon\" PartOfGroup=\"t\">\n"
       "<Coordinate Order=\"0\" X=\"1\" Y=\"1\"/></Annotation></ASAP_Annotations>",
       "^x\\.xml:2: polygon annotation with fewer than 3"},
      {"<ASAP_Annotations>\n<Annotation Type=\"Polygon\" PartOfGroup=\"t\">\n",
       "^x\\.xml:2: <Annotation> is not closed"},
      {"<ASAP_Annotations><Annotation Type=Polygon>", "must be quoted"},
  };
  for (const auto& [text, pattern] : cases) {
    std::string message;
    try {
      Annotations::parseAsapXml(text, "x.xml");
    } catch (const DataError& e) {
      message = e.what();
    }
    EXPECT_TRUE(std::regex_search(message, std::regex(pattern))) << text << "\n -> " << message;
  }
  EXPECT_THROW(Annotations::readAsapXml("/nonexistent/a.xml"), DataError);
}

}  // namespace
}  // namespace slidetrain::wsi
