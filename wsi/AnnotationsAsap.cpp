// ASAP XML annotations (CAMELYON16/17). A small scanner for exactly this flat format: start and
// end tags with attributes, comments and the XML declaration; no DTDs, CDATA or namespaces are
// needed, so the wsi layer stays free of an XML library.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "wsi/Annotations.h"
#include "wsi/Errors.h"

namespace slidetrain::wsi {
namespace {

struct Tag {
  std::string name;  ///< "Annotation", or "/Annotation" for an end tag
  std::map<std::string, std::string> attrs;
  size_t offset = 0;
  bool selfClosing = false;
};

class Scanner {
 public:
  Scanner(const std::string& text, const std::string& source) : t_(text), source_(source) {}

  /// Next tag, or false at the end of the text.
  bool next(Tag& tag) {
    for (;;) {
      const size_t lt = t_.find('<', pos_);
      if (lt == std::string::npos) return false;
      if (t_.compare(lt, 4, "<!--") == 0) {
        const size_t end = t_.find("-->", lt + 4);
        if (end == std::string::npos) fail(lt, "unterminated comment");
        pos_ = end + 3;
        continue;
      }
      if (t_.compare(lt, 2, "<?") == 0 || t_.compare(lt, 2, "<!") == 0) {
        const size_t end = t_.find('>', lt);
        if (end == std::string::npos) fail(lt, "unterminated declaration");
        pos_ = end + 1;
        continue;
      }
      pos_ = lt + 1;
      tag = Tag{};
      tag.offset = lt;
      const size_t nameStart = pos_;
      while (pos_ < t_.size() && !isSpace(t_[pos_]) && t_[pos_] != '>' &&
             !(t_[pos_] == '/' && pos_ > nameStart))
        ++pos_;
      tag.name = t_.substr(nameStart, pos_ - nameStart);
      if (tag.name.empty()) fail(lt, "empty tag name");
      for (;;) {
        while (pos_ < t_.size() && isSpace(t_[pos_])) ++pos_;
        if (pos_ >= t_.size()) fail(lt, "unterminated tag <" + tag.name);
        if (t_[pos_] == '>') {
          ++pos_;
          return true;
        }
        if (t_[pos_] == '/') {  // self-closing: no end tag will follow
          tag.selfClosing = true;
          ++pos_;
          continue;
        }
        const size_t k0 = pos_;
        while (pos_ < t_.size() && t_[pos_] != '=' && !isSpace(t_[pos_]) && t_[pos_] != '>') ++pos_;
        const std::string key = t_.substr(k0, pos_ - k0);
        while (pos_ < t_.size() && isSpace(t_[pos_])) ++pos_;
        if (pos_ >= t_.size() || t_[pos_] != '=') fail(k0, "attribute '" + key + "' without a value");
        ++pos_;
        while (pos_ < t_.size() && isSpace(t_[pos_])) ++pos_;
        if (pos_ >= t_.size() || (t_[pos_] != '"' && t_[pos_] != '\''))
          fail(k0, "attribute '" + key + "' value must be quoted");
        const char q = t_[pos_++];
        const size_t end = t_.find(q, pos_);
        if (end == std::string::npos) fail(k0, "unterminated value of attribute '" + key + "'");
        tag.attrs[key] = decode(t_.substr(pos_, end - pos_));
        pos_ = end + 1;
      }
    }
  }

  [[noreturn]] void fail(size_t offset, const std::string& what) const {
    throw DataError(source_ + ":" + std::to_string(lineOf(offset)) + ": " + what);
  }
  size_t lineOf(size_t offset) const {
    return 1 + size_t(std::count(t_.begin(), t_.begin() + std::min(offset, t_.size()), '\n'));
  }

 private:
  static bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  static std::string decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '&') {
        out += s[i];
        continue;
      }
      static const std::pair<const char*, char> kEntities[] = {
          {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
      bool done = false;
      for (const auto& [name, ch] : kEntities) {
        const size_t n = std::char_traits<char>::length(name);
        if (s.compare(i, n, name) == 0) {
          out += ch, i += n - 1, done = true;
          break;
        }
      }
      if (!done) out += '&';
    }
    return out;
  }

  const std::string& t_;
  const std::string& source_;
  size_t pos_ = 0;
};

/// Coordinates as ASAP writes them; some CAMELYON17 files use a decimal comma.
double number(const Scanner& sc, const Tag& tag, const char* key) {
  auto it = tag.attrs.find(key);
  if (it == tag.attrs.end()) sc.fail(tag.offset, std::string("<Coordinate> without ") + key);
  std::string v = it->second;
  std::replace(v.begin(), v.end(), ',', '.');
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !std::isfinite(d))
    sc.fail(tag.offset, std::string("<Coordinate> ") + key + "=\"" + it->second +
                            "\" is not a number");
  return d;
}

}  // namespace

Annotations Annotations::parseAsapXml(const std::string& text, const std::string& source) {
  Scanner sc(text, source);
  Annotations out;
  Tag tag;
  bool sawRoot = false, inAnnotation = false, keep = false;
  std::string cls;
  size_t annotationOffset = 0;
  std::vector<std::pair<double, std::array<double, 2>>> coords;  // (Order, vertex)
  auto finish = [&] {
    if (!keep) return;
    if (coords.size() < 3)
      sc.fail(annotationOffset, "polygon annotation with fewer than 3 coordinates");
    std::stable_sort(coords.begin(), coords.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    AnnotationPolygon poly;
    poly.className = cls;
    poly.rings.emplace_back();
    for (const auto& c : coords) poly.rings[0].push_back(c.second);
    out.add(std::move(poly));
  };
  while (sc.next(tag)) {
    if (tag.name == "ASAP_Annotations") {
      sawRoot = true;
    } else if (tag.name == "Annotation" && !tag.selfClosing) {
      if (inAnnotation) sc.fail(tag.offset, "<Annotation> inside <Annotation>");
      inAnnotation = true;
      annotationOffset = tag.offset;
      coords.clear();
      const std::string type = tag.attrs.count("Type") ? tag.attrs["Type"] : "Polygon";
      keep = type == "Polygon" || type == "Rectangle" || type == "Spline";
      cls = tag.attrs.count("PartOfGroup") ? tag.attrs["PartOfGroup"] : "";
      if (cls == "_0" || cls == "_1") cls = "Tumor";  // CAMELYON16: both groups are tumour
      if (cls.empty() || cls == "None") keep = false;  // ungrouped: nothing to learn from
    } else if (tag.name == "/Annotation") {
      if (!inAnnotation) sc.fail(tag.offset, "</Annotation> without <Annotation>");
      finish();
      inAnnotation = false;
    } else if (tag.name == "Coordinate" && inAnnotation) {
      const double order = tag.attrs.count("Order") ? number(sc, tag, "Order") : double(coords.size());
      coords.push_back({order, {number(sc, tag, "X"), number(sc, tag, "Y")}});
    }
  }
  if (!sawRoot)
    throw DataError(source + ": not an ASAP annotation file (no <ASAP_Annotations> element)");
  if (inAnnotation) sc.fail(annotationOffset, "<Annotation> is not closed");
  return out;
}

Annotations Annotations::readAsapXml(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot read annotations '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parseAsapXml(ss.str(), path);
}

}  // namespace slidetrain::wsi
