// GeoJSON annotations -> labelled polygons, and point lookup for labelling patch centres.
#include "wsi/Annotations.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "wsi/Errors.h"
#include "wsi/Json.h"
#include "wsi/JsonWriter.h"

namespace slidetrain::wsi {

void AnnotationPolygon::updateBounds() {
  bounds = {INFINITY, INFINITY, -INFINITY, -INFINITY};
  for (const auto& ring : rings)
    for (const auto& p : ring) {
      bounds[0] = std::min(bounds[0], p[0]), bounds[1] = std::min(bounds[1], p[1]);
      bounds[2] = std::max(bounds[2], p[0]), bounds[3] = std::max(bounds[3], p[1]);
    }
}

bool AnnotationPolygon::contains(double x, double y) const {
  if (x < bounds[0] || x > bounds[2] || y < bounds[1] || y > bounds[3]) return false;
  bool inside = false;  // even-odd ray casting over all rings, so holes fall out naturally
  for (const auto& ring : rings) {
    const size_t n = ring.size();
    for (size_t i = 0, j = n - 1; i < n; j = i++) {
      const auto& a = ring[i];
      const auto& b = ring[j];
      if ((a[1] > y) != (b[1] > y) && x < (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]) + a[0])
        inside = !inside;
    }
  }
  return inside;
}

double AnnotationPolygon::area() const {
  double total = 0;
  for (size_t r = 0; r < rings.size(); ++r) {
    double s = 0;
    const auto& ring = rings[r];
    for (size_t i = 0, j = ring.size() - 1; i < ring.size(); j = i++)
      s += ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
    total += (r == 0 ? 1 : -1) * std::abs(s) / 2;
  }
  return total;
}

namespace {

std::string className(const JsonValue& feature) {
  const JsonValue* props = feature.find("properties");
  if (!props) return "";
  const JsonValue* cls = props->find("classification");
  if (cls && cls->isString()) return cls->string;  // some older exports
  if (cls) {
    if (const JsonValue* name = cls->find("name"); name && name->isString()) return name->string;
  }
  return "";
}

std::vector<std::array<double, 2>> ring(const JsonValue& v, const std::string& where) {
  if (!v.isArray()) throw DataError(where + ": a polygon ring must be an array of [x, y]");
  std::vector<std::array<double, 2>> out;
  for (const auto& p : v.array) {
    if (!p.isArray() || p.array.size() < 2 || !p.array[0].isNumber() || !p.array[1].isNumber())
      throw DataError(where + ": a polygon vertex must be [x, y] numbers");
    out.push_back({p.array[0].number, p.array[1].number});
  }
  if (out.size() < 3) throw DataError(where + ": a polygon ring needs at least 3 vertices");
  return out;
}

void addPolygon(Annotations& out, const JsonValue& coords, const std::string& cls,
                const std::string& where) {
  if (!coords.isArray() || coords.array.empty())
    throw DataError(where + ": Polygon coordinates must be a non-empty array of rings");
  AnnotationPolygon poly;
  poly.className = cls;
  for (const auto& r : coords.array) poly.rings.push_back(ring(r, where));
  out.add(std::move(poly));
}

void addFeature(Annotations& out, const JsonValue& feature, const std::string& where) {
  const std::string cls = className(feature);
  const JsonValue* geom = feature.find("geometry");
  if (cls.empty() || !geom || !geom->isObject()) return;  // unclassified: nothing to learn from
  const JsonValue* type = geom->find("type");
  const JsonValue* coords = geom->find("coordinates");
  if (!type || !type->isString()) throw DataError(where + ": geometry without a type");
  if (type->string == "Polygon") {
    if (!coords) throw DataError(where + ": Polygon without coordinates");
    addPolygon(out, *coords, cls, where);
  } else if (type->string == "MultiPolygon") {
    if (!coords || !coords->isArray())
      throw DataError(where + ": MultiPolygon coordinates must be an array of polygons");
    for (const auto& p : coords->array) addPolygon(out, p, cls, where);
  }
}

}  // namespace

Annotations Annotations::parseGeoJson(const std::string& text, const std::string& source) {
  const JsonValue doc = parseJson(text, source);
  Annotations out;
  auto features = [&](const JsonValue& arr) {
    for (size_t i = 0; i < arr.array.size(); ++i)
      addFeature(out, arr.array[i], source + ": feature " + std::to_string(i));
  };
  const JsonValue* type = doc.find("type");
  if (doc.isArray()) {
    features(doc);
  } else if (type && type->isString() && type->string == "FeatureCollection") {
    const JsonValue* fs = doc.find("features");
    if (!fs || !fs->isArray()) throw DataError(source + ": FeatureCollection without features");
    features(*fs);
  } else if (type && type->isString() && type->string == "Feature") {
    addFeature(out, doc, source);
  } else {
    throw DataError(source + ": expected a GeoJSON FeatureCollection, Feature or array of "
                    "Features (as QuPath exports them)");
  }
  return out;
}

Annotations Annotations::read(const std::string& path) {
  std::string ext = path.substr(path.find_last_of("/.") == std::string::npos
                                    ? path.size()
                                    : path.find_last_of("/."));
  for (auto& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".xml") return readAsapXml(path);
  if (ext == ".geojson" || ext == ".json") return readGeoJson(path);
  throw DataError("annotations '" + path +
                  "': unknown format; expected .xml (ASAP/CAMELYON) or .geojson/.json (QuPath)");
}

bool Annotations::isExclusionClass(const std::string& className) {
  std::string c = className;
  for (auto& ch : c) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return c == "_2" || c == "exclusion";
}

Annotations Annotations::readGeoJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot read annotations '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parseGeoJson(ss.str(), path);
}

void Annotations::writeGeoJson(const std::string& path) const {
  std::ofstream out(path);
  if (!out) throw DataError("cannot write annotations '" + path + "'");
  std::vector<const AnnotationPolygon*> all;
  for (const auto& p : polygons_) all.push_back(&p);
  for (const auto& p : exclusions_) all.push_back(&p);
  JsonWriter w(out);  // {"a": 1, "b": [2, 3]}, numbers as %.10g
  w.beginObject().key("type").value("FeatureCollection");
  w.key("features").beginArray(JsonLayout::OnePerLine);
  for (const AnnotationPolygon* p : all) {
    w.beginObject().key("type").value("Feature");
    w.key("geometry").beginObject().key("type").value("Polygon").key("coordinates").beginArray();
    for (const auto& ring : p->rings) {
      w.beginArray();
      for (const auto& v : ring) w.beginArray().value(v[0]).value(v[1]).endArray();
      w.endArray();
    }
    w.endArray().endObject();
    w.key("properties").beginObject().key("objectType").value("annotation");
    w.key("classification").beginObject().key("name").value(p->className).endObject();
    w.endObject().endObject();
  }
  w.endArray().endObject();
  out << "\n";
  if (!out.flush()) throw DataError("cannot write annotations '" + path + "': write failed");
}

void Annotations::add(AnnotationPolygon polygon) {
  for (auto& r : polygon.rings)  // GeoJSON rings repeat the first vertex at the end
    if (r.size() > 3 && r.front() == r.back()) r.pop_back();
  polygon.updateBounds();
  if (isExclusionClass(polygon.className)) exclusions_.push_back(std::move(polygon));
  else polygons_.push_back(std::move(polygon));
}

bool Annotations::excluded(double x, double y) const {
  for (const auto& e : exclusions_)
    if (e.contains(x, y)) return true;
  return false;
}

std::vector<std::string> Annotations::classNames() const {
  std::set<std::string> names;
  for (const auto& p : polygons_) names.insert(p.className);
  return {names.begin(), names.end()};
}

std::string Annotations::labelAt(double x, double y) const {
  if (excluded(x, y)) return "";
  for (auto it = polygons_.rbegin(); it != polygons_.rend(); ++it)
    if (it->contains(x, y)) return it->className;
  return "";
}

}  // namespace slidetrain::wsi
