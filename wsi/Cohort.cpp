// Cohort CSV reader/writer. The header names the columns (any order); extra columns are ignored
// so that users can keep notes in the same sheet. Every error names file:line and the column.
#include "wsi/Cohort.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "wsi/Errors.h"

namespace slidetrain::wsi {
namespace {

namespace fs = std::filesystem;

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

/// Splits one CSV line (RFC 4180 quoting: "a,b" and "" for a quote inside quotes).
std::vector<std::string> splitCsv(const std::string& line, const std::string& where) {
  std::vector<std::string> out;
  std::string field;
  bool quoted = false, wasQuoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') field += '"', ++i;
      else if (c == '"') quoted = false;
      else field += c;
    } else if (c == '"' && trim(field).empty()) {
      quoted = wasQuoted = true;
      field.clear();
    } else if (c == ',') {
      out.push_back(wasQuoted ? field : trim(field));
      field.clear();
      wasQuoted = false;
    } else if (wasQuoted && c != ' ' && c != '\t' && c != '\r') {
      throw DataError(where + ": unexpected character '" + std::string(1, c) +
                      "' after a closing quote");
    } else if (!wasQuoted) {
      field += c;
    }
  }
  if (quoted) throw DataError(where + ": unterminated quoted field");
  out.push_back(wasQuoted ? field : trim(field));
  return out;
}

std::string quoteCsv(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos && trim(s) == s) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

Cohort Cohort::read(const std::string& csvPath, bool requireLabels) {
  std::ifstream in(csvPath);
  if (!in) throw DataError("cannot read cohort '" + csvPath + "': " + std::strerror(errno));
  return parse(in, csvPath, requireLabels);
}

Cohort Cohort::parse(std::istream& in, const std::string& csvPath, bool requireLabels) {
  const fs::path folder = fs::absolute(fs::path(csvPath)).parent_path();
  std::string line;
  int lineNo = 0;
  std::map<std::string, size_t> col;
  size_t headerFields = 0;  // repeated unknown names (notes, "") are one entry of col
  const char* required[] = {"slide_id", "path", "label"};
  const std::set<std::string> known = {"slide_id", "path", "label", "split", "patient_id", "mpp"};
  Cohort cohort;
  std::map<std::string, int> firstLine;
  while (std::getline(in, line)) {
    ++lineNo;
    if (lineNo == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 BOM
    if (trim(line).empty()) continue;
    const std::string where = csvPath + ":" + std::to_string(lineNo);
    const auto fields = splitCsv(line, where);
    if (col.empty()) {  // header
      headerFields = fields.size();
      for (size_t i = 0; i < fields.size(); ++i) {
        const std::string name = fields[i];
        if (known.count(name) && col.count(name))
          throw DataError(where + ": column '" + name + "' appears twice in the header");
        col.emplace(name, i);
      }
      for (const char* r : required)
        if (!col.count(r) && (requireLabels || std::string(r) != "label"))
          throw DataError(where + ": header lacks column '" + std::string(r) + "' (header is '" +
                          trim(line) + "'); HINT: the first line must name the columns, "
                          "e.g. slide_id,path,label[,split][,patient_id][,mpp]");
      continue;
    }
    if (fields.size() != headerFields)
      throw DataError(where + ": expected " + std::to_string(headerFields) + " fields as in the "
                      "header, got " + std::to_string(fields.size()));
    auto get = [&](const char* name) -> std::string {
      auto it = col.find(name);
      return it == col.end() ? std::string() : fields[it->second];
    };
    CohortEntry e;
    e.slideId = get("slide_id");
    e.label = get("label");
    e.split = get("split");
    e.patientId = get("patient_id");
    const std::string path = get("path");
    for (auto [name, value] : {std::pair<const char*, const std::string*>{"slide_id", &e.slideId},
                               {"path", &path}, {"label", &e.label}})
      if (value->empty() && (requireLabels || std::string(name) != "label"))
        throw DataError(where + ": column '" + name + "' is empty" +
                        (std::string(name) == "label" ? " (training needs a label on every slide; "
                                                        "predict accepts unlabelled slides)" : ""));
    if (!e.split.empty() && e.split != "train" && e.split != "val" && e.split != "test")
      throw DataError(where + ": column 'split': expected train, val, test or empty, got '" +
                      e.split + "'");
    if (const std::string m = get("mpp"); !m.empty()) {
      char* end = nullptr;
      const double v = std::strtod(m.c_str(), &end);
      if (end == m.c_str() || *end != '\0' || !(v > 0) || !std::isfinite(v))
        throw DataError(where + ": column 'mpp': expected a positive number, got '" + m + "'");
      e.mpp = v;
    }
    if (auto [it, fresh] = firstLine.emplace(e.slideId, lineNo); !fresh)
      throw DataError(where + ": column 'slide_id': duplicate '" + e.slideId +
                      "' (first on line " + std::to_string(it->second) + ")");
    const fs::path p(path);
    e.path = p.is_absolute() ? p.lexically_normal().string() : (folder / p).lexically_normal().string();
    cohort.slides.push_back(std::move(e));
  }
  if (col.empty())
    throw DataError(csvPath + ": empty file; expected a header slide_id,path,label[,split]...");
  if (cohort.slides.empty()) throw DataError(csvPath + ": the cohort lists no slides");
  std::set<std::string> labels;
  for (const auto& e : cohort.slides)
    if (!e.label.empty()) labels.insert(e.label);
  cohort.classes.assign(labels.begin(), labels.end());
  for (auto& e : cohort.slides)
    e.labelIndex = e.label.empty() ? -1
                                   : int(std::lower_bound(cohort.classes.begin(), cohort.classes.end(),
                                                          e.label) - cohort.classes.begin());
  return cohort;
}

void Cohort::write(const std::string& csvPath) const {
  std::ofstream out(csvPath);
  if (!out) throw DataError("cannot write cohort '" + csvPath + "': " + std::strerror(errno));
  write(out);
  if (!out.flush()) throw DataError("cannot write cohort '" + csvPath + "': write failed");
}

void Cohort::write(std::ostream& out) const {
  const bool anyMpp = std::any_of(slides.begin(), slides.end(), [](auto& e) { return e.mpp; });
  out << "slide_id,path,label,split,patient_id" << (anyMpp ? ",mpp" : "") << "\n";
  const auto precision = out.precision(17);  // mpp exactly as read
  for (const auto& e : slides) {
    out << quoteCsv(e.slideId) << ',' << quoteCsv(e.path) << ',' << quoteCsv(e.label) << ','
        << quoteCsv(e.split) << ',' << quoteCsv(e.patientId);
    if (anyMpp) {
      out << ',';
      if (e.mpp) out << *e.mpp;
    }
    out << "\n";
  }
  out.precision(precision);
}

std::vector<size_t> Cohort::indicesOfSplit(const std::string& split) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < slides.size(); ++i)
    if (split == "all" || slides[i].split == split) out.push_back(i);
  return out;
}

size_t Cohort::unlabelledCount() const {
  return static_cast<size_t>(std::count_if(slides.begin(), slides.end(),
                                           [](const CohortEntry& e) { return e.labelIndex < 0; }));
}

void Cohort::setClassOrder(const std::vector<std::string>& order, const std::string& what,
                           bool allowAbsent) {
  auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
    return out;
  };
  for (size_t i = 0; i < order.size(); ++i)
    for (size_t j = i + 1; j < order.size(); ++j)
      if (order[i] == order[j]) throw DataError(what + ": class '" + order[i] + "' is listed twice");
  for (const auto& c : classes)
    if (std::find(order.begin(), order.end(), c) == order.end())
      throw DataError(what + ": the cohort has slides labelled '" + c + "', which [" + list(order) +
                      "] does not list (the cohort's classes: " + list(classes) + ")");
  for (const auto& c : order)
    if (!allowAbsent && std::find(classes.begin(), classes.end(), c) == classes.end())
      throw DataError(what + ": no slide of the cohort is labelled '" + c +
                      "' (the cohort's classes: " + list(classes) + ")");
  classes = order;
  for (auto& e : slides)
    e.labelIndex = e.label.empty() ? -1 : int(std::find(classes.begin(), classes.end(), e.label) - classes.begin());
}

}  // namespace slidetrain::wsi
