#pragma once
// Cohort CSV: slide_id,path,label[,split][,patient_id][,mpp]. Relative paths are resolved against
// the CSV's folder. Labels are class names; their sorted order gives class indices unless an
// explicit order is set (setClassOrder: the last class is the positive one of binary metrics).
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace slidetrain::wsi {

struct CohortEntry {
  std::string slideId;
  std::string path;   ///< absolute or relative to the CSV's folder, as resolved
  std::string label;  ///< class name
  int labelIndex = -1;  ///< -1: unlabelled (allowed when reading for prediction)
  std::string split;  ///< "train", "val", "test" or empty
  std::string patientId;
  std::optional<double> mpp;
};

struct Cohort {
  std::vector<CohortEntry> slides;
  std::vector<std::string> classes;  ///< unique labels: sorted, or as setClassOrder gave them
  /// Every entry is one patch image of a patch-folder dataset (wsi/PatchFolders.h), not a slide.
  bool imageFiles = false;
  /// Reads and validates; throws DataError naming the file and line. With requireLabels false
  /// (prediction) the label column may be missing or empty: such slides have labelIndex -1 and
  /// `classes` holds the labels that do appear.
  static Cohort read(const std::string& csvPath, bool requireLabels = true);
  /// The same from a stream: `csvPath` names the file in errors and anchors relative paths.
  static Cohort parse(std::istream& in, const std::string& csvPath, bool requireLabels = true);
  void write(const std::string& csvPath) const;
  /// The CSV that write() puts in the file.
  void write(std::ostream& out) const;
  /// Slides of `split` ("all": every slide).
  std::vector<size_t> indicesOfSplit(const std::string& split) const;
  size_t unlabelledCount() const;
  /// Re-indexes the classes in `order` (data.classes). Throws DataError naming a label of the
  /// cohort that `order` lacks, or a class of `order` no slide has, or a repeated class.
  /// With allowAbsent, classes no slide carries are accepted (prediction on a few slides).
  void setClassOrder(const std::vector<std::string>& order, const std::string& what = "data.classes",
                     bool allowAbsent = false);
};

}  // namespace slidetrain::wsi
