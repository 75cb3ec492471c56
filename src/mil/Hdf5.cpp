#include "src/mil/Hdf5.h"

#include <hdf5.h>

#include <algorithm>
#include <utility>

#include "wsi/Errors.h"

namespace slidetrain::h5 {
namespace {

using wsi::DataError;

/// HDF5 prints its error stack to stderr by default; slidetrain reports errors itself.
void silence() {
  static const bool once = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)once;
}

/// Closes an HDF5 handle with the matching call when it goes out of scope.
class Handle {
 public:
  Handle(hid_t id, herr_t (*closer)(hid_t)) : id_(id), closer_(closer) {}
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, -1)), closer_(o.closer_) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;
  ~Handle() {
    if (id_ >= 0) closer_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*closer_)(hid_t);
};

/// IEEE half precision as h5py and numpy store float16 (1 sign, 5 exponent, 10 mantissa bits).
Handle halfType() {
  Handle t(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
  H5Tset_fields(t.get(), 15, 10, 5, 0, 10);
  H5Tset_size(t.get(), 2);
  H5Tset_ebias(t.get(), 15);
  return t;
}

std::string where(const std::string& path, const std::string& object) {
  return path + " (" + object + ")";
}

}  // namespace

File File::create(const std::string& path) {
  silence();
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) throw DataError(path + ": cannot create the HDF5 file");
  return File(path, id);
}

File File::open(const std::string& path) {
  silence();
#if H5_VERSION_GE(1, 12, 0)
  const htri_t readable = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  const htri_t readable = H5Fis_hdf5(path.c_str());
#endif
  if (readable <= 0)
    throw DataError(path + ": not a readable HDF5 file (missing, truncated or another format)");
  hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw DataError(path + ": cannot open the HDF5 file");
  return File(path, id);
}

File::File(File&& o) noexcept : path_(std::move(o.path_)), id_(std::exchange(o.id_, -1)) {}
File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    if (id_ >= 0) H5Fclose(id_);
    path_ = std::move(o.path_);
    id_ = std::exchange(o.id_, -1);
  }
  return *this;
}
File::~File() {
  if (id_ >= 0) H5Fclose(id_);
}

void File::close() {
  if (id_ < 0) return;
  const herr_t flushed = H5Fflush(id_, H5F_SCOPE_LOCAL);
  const herr_t closed = H5Fclose(id_);
  id_ = -1;
  if (flushed < 0 || closed < 0) throw DataError(path_ + ": writing the HDF5 file failed");
}

namespace {

void writeDataset(hid_t file, const std::string& path, const std::string& name, hid_t fileType,
                  hid_t memType, const void* data, int64_t rows, int64_t cols) {
  const hsize_t dims[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(cols)};
  Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose);
  Handle plist(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (rows > 0 && cols > 0) {
    // Chunks of whole rows, about 1 MiB: a bag is read whole, a few rows cheaply.
    const hsize_t rowsPerChunk = std::max<hsize_t>(
        1, std::min<hsize_t>(dims[0], (1u << 20) / (static_cast<hsize_t>(cols) * 4)));
    const hsize_t chunk[2] = {rowsPerChunk, dims[1]};
    H5Pset_chunk(plist.get(), 2, chunk);
  }
  Handle set(H5Dcreate2(file, name.c_str(), fileType, space.get(), H5P_DEFAULT, plist.get(),
                        H5P_DEFAULT),
             H5Dclose);
  if (!set.ok()) throw DataError(where(path, name) + ": cannot create the dataset");
  if (rows > 0 && cols > 0 &&
      H5Dwrite(set.get(), memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw DataError(where(path, name) + ": cannot write the dataset");
}

}  // namespace

void File::writeFloat(const std::string& name, const float* data, int64_t rows, int64_t cols,
                      Type stored) {
  if (stored == Type::Int64) throw DataError(where(path_, name) + ": float data stored as int64");
  if (stored == Type::Float16) {
    Handle half = halfType();
    writeDataset(id_, path_, name, half.get(), H5T_NATIVE_FLOAT, data, rows, cols);
  } else {
    writeDataset(id_, path_, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, rows, cols);
  }
}

void File::writeInt64(const std::string& name, const int64_t* data, int64_t rows, int64_t cols) {
  writeDataset(id_, path_, name, H5T_STD_I64LE, H5T_NATIVE_INT64, data, rows, cols);
}

bool File::hasDataset(const std::string& name) const {
  return H5Lexists(id_, name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<int64_t> File::shape(const std::string& name) const {
  if (!hasDataset(name)) throw DataError(where(path_, name) + ": no such dataset");
  Handle set(H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!set.ok()) throw DataError(where(path_, name) + ": cannot open the dataset");
  Handle space(H5Dget_space(set.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) throw DataError(where(path_, name) + ": unreadable dataspace");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

Type File::storedType(const std::string& name) const {
  Handle set(H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!set.ok()) throw DataError(where(path_, name) + ": no such dataset");
  Handle type(H5Dget_type(set.get()), H5Tclose);
  if (H5Tget_class(type.get()) == H5T_INTEGER) return Type::Int64;
  return H5Tget_size(type.get()) == 2 ? Type::Float16 : Type::Float32;
}

namespace {

template <typename T>
std::vector<T> readAll(hid_t file, const std::string& path, const std::string& name, hid_t memType,
                       int64_t elements) {
  Handle set(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!set.ok()) throw DataError(where(path, name) + ": cannot open the dataset");
  std::vector<T> out(static_cast<size_t>(elements));
  if (elements > 0 && H5Dread(set.get(), memType, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw DataError(where(path, name) + ": cannot read the dataset (truncated file?)");
  return out;
}

int64_t product(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

}  // namespace

std::vector<float> File::readFloat(const std::string& name) const {
  return readAll<float>(id_, path_, name, H5T_NATIVE_FLOAT, product(shape(name)));
}

std::vector<int64_t> File::readInt64(const std::string& name) const {
  return readAll<int64_t>(id_, path_, name, H5T_NATIVE_INT64, product(shape(name)));
}

namespace {

Handle openObject(hid_t file, const std::string& path, const std::string& object) {
  Handle obj(H5Oopen(file, object.c_str(), H5P_DEFAULT), H5Oclose);
  if (!obj.ok()) throw DataError(where(path, object) + ": no such object");
  return obj;
}

void writeAttr(hid_t file, const std::string& path, const std::string& object,
               const std::string& key, hid_t fileType, hid_t memType, const void* value) {
  Handle obj = openObject(file, path, object);
  if (H5Aexists(obj.get(), key.c_str()) > 0) H5Adelete(obj.get(), key.c_str());
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate2(obj.get(), key.c_str(), fileType, space.get(), H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose);
  if (!attr.ok() || H5Awrite(attr.get(), memType, value) < 0)
    throw DataError(where(path, object) + ": cannot write attribute " + key);
}

Handle openAttr(hid_t file, const std::string& path, const std::string& object,
                const std::string& key) {
  Handle obj = openObject(file, path, object);
  Handle attr(H5Aopen(obj.get(), key.c_str(), H5P_DEFAULT), H5Aclose);
  if (!attr.ok()) throw DataError(where(path, object) + ": no attribute '" + key + "'");
  return attr;
}

}  // namespace

void File::setAttr(const std::string& object, const std::string& key, const std::string& value) {
  // A variable-length UTF-8 string: h5py returns it as a Python str.
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  const char* p = value.c_str();
  writeAttr(id_, path_, object, key, type.get(), type.get(), &p);
}

void File::setAttr(const std::string& object, const std::string& key, int64_t value) {
  writeAttr(id_, path_, object, key, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void File::setAttr(const std::string& object, const std::string& key, double value) {
  writeAttr(id_, path_, object, key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

bool File::hasAttr(const std::string& object, const std::string& key) const {
  Handle obj(H5Oopen(id_, object.c_str(), H5P_DEFAULT), H5Oclose);
  return obj.ok() && H5Aexists(obj.get(), key.c_str()) > 0;
}

std::string File::attrString(const std::string& object, const std::string& key) const {
  Handle attr = openAttr(id_, path_, object, key);
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING)
    throw DataError(where(path_, object) + ": attribute '" + key + "' is not a string");
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    char* p = nullptr;
    if (H5Aread(attr.get(), mem.get(), &p) < 0 || p == nullptr)
      throw DataError(where(path_, object) + ": cannot read attribute " + key);
    std::string out(p);
    H5free_memory(p);
    return out;
  }
  std::string out(H5Tget_size(type.get()), '\0');
  if (H5Aread(attr.get(), type.get(), out.data()) < 0)
    throw DataError(where(path_, object) + ": cannot read attribute " + key);
  return out.substr(0, out.find('\0'));
}

int64_t File::attrInt(const std::string& object, const std::string& key) const {
  Handle attr = openAttr(id_, path_, object, key);
  int64_t v = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &v) < 0)
    throw DataError(where(path_, object) + ": attribute '" + key + "' is not an integer");
  return v;
}

double File::attrDouble(const std::string& object, const std::string& key) const {
  Handle attr = openAttr(id_, path_, object, key);
  double v = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v) < 0)
    throw DataError(where(path_, object) + ": attribute '" + key + "' is not a number");
  return v;
}

std::string libraryVersion() {
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  return "HDF5 " + std::to_string(major) + "." + std::to_string(minor) + "." +
         std::to_string(release);
}

}  // namespace slidetrain::h5
