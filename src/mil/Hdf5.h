#pragma once
// A small wrapper of the HDF5 C API (Debian's libhdf5-dev): the few calls slidetrain's feature
// files need. Handles close themselves; every failure throws wsi::SlideError naming the file and
// the dataset or attribute, with HDF5's own error stack silenced (it would print to stderr).
#include <cstdint>
#include <string>
#include <vector>

namespace slidetrain::h5 {

/// Element type of a dataset on disk. Float16 is IEEE half precision as h5py and numpy store it;
/// reading converts to float32 (HDF5's own conversion).
enum class Type { Float32, Float16, Int64 };

class File {
 public:
  /// Creates (truncating) or opens read-only. Throws naming the path.
  static File create(const std::string& path);
  static File open(const std::string& path);
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::string& path() const { return path_; }
  /// Writes a 2-D dataset [rows, cols] from row-major float32 data, stored as `stored`
  /// (Float32 or Float16), or from int64 data. Chunked and not compressed.
  void writeFloat(const std::string& name, const float* data, int64_t rows, int64_t cols,
                  Type stored = Type::Float32);
  void writeInt64(const std::string& name, const int64_t* data, int64_t rows, int64_t cols);
  /// Shape of a dataset (throws naming the dataset when missing).
  std::vector<int64_t> shape(const std::string& name) const;
  bool hasDataset(const std::string& name) const;
  /// Reads a whole dataset converted to float32 / int64 (row-major).
  std::vector<float> readFloat(const std::string& name) const;
  std::vector<int64_t> readInt64(const std::string& name) const;
  /// On-disk element type of a dataset.
  Type storedType(const std::string& name) const;

  /// Scalar attributes on an object ("/" = the file, or a dataset name).
  void setAttr(const std::string& object, const std::string& key, const std::string& value);
  void setAttr(const std::string& object, const std::string& key, int64_t value);
  void setAttr(const std::string& object, const std::string& key, double value);
  bool hasAttr(const std::string& object, const std::string& key) const;
  std::string attrString(const std::string& object, const std::string& key) const;
  int64_t attrInt(const std::string& object, const std::string& key) const;
  double attrDouble(const std::string& object, const std::string& key) const;
  /// Flushes and closes (throws on failure, unlike the destructor).
  void close();

 private:
  File(std::string path, int64_t id) : path_(std::move(path)), id_(id) {}
  std::string path_;
  int64_t id_ = -1;  ///< hid_t
};

/// "HDF5 x.y.z" of the linked library.
std::string libraryVersion();

}  // namespace slidetrain::h5
