#pragma once
// Annotations: labelled polygons in level-0 pixel coordinates, read from GeoJSON as QuPath
// exports it (FeatureCollection, a single Feature, or an array of Features; Polygon and
// MultiPolygon geometries; class from properties.classification.name), or from ASAP XML as
// CAMELYON ships it. Polygons of an exclusion class ("_2", CAMELYON16's exclusion group, or
// "Exclusion", any case) are holes cut out of every other polygon.
#include <array>
#include <string>
#include <vector>

namespace slidetrain::wsi {

/// One polygon: rings[0] is the exterior, further rings are holes (even-odd rule).
struct AnnotationPolygon {
  std::string className;
  std::vector<std::vector<std::array<double, 2>>> rings;
  std::array<double, 4> bounds{0, 0, 0, 0};  ///< minX, minY, maxX, maxY (set by updateBounds)
  void updateBounds();
  bool contains(double x, double y) const;
  /// Area of the exterior minus holes (shoelace), in level-0 pixels².
  double area() const;
};

class Annotations {
 public:
  /// Reads by extension: .xml = ASAP XML, .geojson/.json = GeoJSON; else DataError.
  static Annotations read(const std::string& path);
  /// Reads an ASAP XML file (<ASAP_Annotations><Annotations><Annotation Type="Polygon"
  /// PartOfGroup="..."><Coordinates><Coordinate Order X Y/>). Class = PartOfGroup, except
  /// CAMELYON16's "_0" and "_1", which mean "Tumor"; "_2" is an exclusion. Polygon, Rectangle and
  /// Spline (its control points) annotations are read; Dot and PointSet are ignored. Throws
  /// DataError naming the file and line.
  static Annotations readAsapXml(const std::string& path);
  static Annotations parseAsapXml(const std::string& text, const std::string& source);
  /// True for the class names whose polygons are holes of the others ("_2", "exclusion").
  static bool isExclusionClass(const std::string& className);
  /// Reads a GeoJSON file; throws DataError naming the file (and line:col for bad JSON).
  static Annotations readGeoJson(const std::string& path);
  /// Parses GeoJSON text; `source` names it in errors. Unclassified features are skipped;
  /// non-polygon geometries (points, lines) are ignored.
  static Annotations parseGeoJson(const std::string& text, const std::string& source);
  /// Writes a QuPath-style FeatureCollection (one Polygon feature per polygon).
  void writeGeoJson(const std::string& path) const;

  /// Adds a polygon; one of an exclusion class goes to exclusions().
  void add(AnnotationPolygon polygon);
  /// Labelled polygons (exclusions not included).
  const std::vector<AnnotationPolygon>& polygons() const { return polygons_; }
  /// Exclusion polygons: no point inside one carries a label.
  const std::vector<AnnotationPolygon>& exclusions() const { return exclusions_; }
  bool excluded(double x, double y) const;
  bool empty() const { return polygons_.empty(); }
  /// Sorted unique class names.
  std::vector<std::string> classNames() const;
  /// Class of the polygon containing (x, y) in level-0 pixels, or "" when none does. Where
  /// polygons overlap, the one listed last wins (it is drawn on top in QuPath). Points inside an
  /// exclusion polygon have no label.
  std::string labelAt(double x, double y) const;

 private:
  std::vector<AnnotationPolygon> polygons_;
  std::vector<AnnotationPolygon> exclusions_;
};

}  // namespace slidetrain::wsi
