// Binary PatchIndex file, little-endian:
//   magic[8] u32 version | str slidePath | str fingerprint | i32 level, size, stride, readSize
//   f64 minTissue, levelDownsample, targetMpp, targetMagnification (0 = none)
//   f64 maxWhiteFraction, maxBlackFraction | i32 whiteThreshold, blackThreshold
//   f64 patchMpp, tissueFraction | u64 n | n x (i64 x, i64 y, f32 tissue, i32 label)
//   | u64 FNV-1a of every preceding byte
// where str = u32 length + bytes. The checksum makes a torn or bit-flipped cache file fail loudly
// instead of silently training on a wrong grid.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "wsi/Errors.h"
#include "wsi/PatchIndex.h"
#include "wsi/PatchIndexFile.h"

namespace slidetrain::wsi {
namespace detail {

uint64_t fnv1a(const void* data, size_t size, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace detail

namespace {

class Writer {
 public:
  template <typename T> void put(const T& v) {
    const size_t at = buf_.size();
    buf_.resize(at + sizeof(T));
    std::memcpy(&buf_[at], &v, sizeof(T));
  }
  void putString(const std::string& s) {
    put(uint32_t(s.size()));
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  void putBytes(const void* p, size_t n) {
    buf_.insert(buf_.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n);
  }
  std::vector<char>& bytes() { return buf_; }

 private:
  std::vector<char> buf_;
};

class Reader {
 public:
  Reader(const std::vector<char>& buf, size_t end, const std::string& file)
      : buf_(buf), end_(end), file_(file) {}
  template <typename T> T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, &buf_[pos_], sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string getString(const char* what) {
    const uint32_t n = get<uint32_t>(what);
    need(n, what);
    std::string s(&buf_[pos_], n);
    pos_ += n;
    return s;
  }
  void need(size_t n, const char* what) const {
    if (n > end_ - pos_)
      throw DataError("patch index '" + file_ + "' is truncated or corrupted (reading " + what +
                      "); delete it to rebuild");
  }
  size_t remaining() const { return end_ - pos_; }

 private:
  const std::vector<char>& buf_;
  size_t end_, pos_ = 0;
  const std::string& file_;
};

}  // namespace

std::vector<char> PatchIndex::serialize() const {
  Writer w;
  w.putBytes(detail::kPatchIndexMagic, sizeof detail::kPatchIndexMagic);
  w.put(detail::kPatchIndexVersion);
  w.putString(slidePath);
  w.putString(fingerprint);
  w.put(int32_t(options.level)), w.put(int32_t(options.size)), w.put(int32_t(options.stride));
  w.put(int32_t(readSide()));
  w.put(options.minTissue), w.put(levelDownsample);
  w.put(options.targetMpp.value_or(0.0)), w.put(options.targetMagnification.value_or(0.0));
  w.put(options.maxWhiteFraction), w.put(options.maxBlackFraction);
  w.put(int32_t(options.whiteThreshold)), w.put(int32_t(options.blackThreshold));
  w.put(patchMpp), w.put(tissueFraction);
  w.put(uint64_t(patches.size()));
  for (const auto& p : patches) w.put(p.x), w.put(p.y), w.put(p.tissue), w.put(p.label);
  w.put(detail::fnv1a(w.bytes().data(), w.bytes().size()));
  return std::move(w.bytes());
}

void PatchIndex::save(const std::string& file) const {
  const std::vector<char> bytes = serialize();
  namespace fs = std::filesystem;
  const fs::path target(file);
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  std::ostringstream tmpName;
  tmpName << file << ".tmp." << ::getpid() << "." << std::this_thread::get_id();
  const std::string tmp = tmpName.str();
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw DataError("cannot write patch index '" + file + "' (temporary '" + tmp + "')");
    out.write(bytes.data(), std::streamsize(bytes.size()));
    if (!out.flush()) throw DataError("cannot write patch index '" + file + "': write failed");
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp);
    throw DataError("cannot write patch index '" + file + "': rename failed: " + ec.message());
  }
}

PatchIndex PatchIndex::load(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw DataError("cannot read patch index '" + file + "'");
  const std::vector<char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse(buf, file);
}

PatchIndex PatchIndex::parse(const std::vector<char>& buf, const std::string& file) {
  const size_t magicLen = sizeof detail::kPatchIndexMagic;
  if (buf.size() < magicLen + 4 || std::memcmp(buf.data(), detail::kPatchIndexMagic, magicLen))
    throw DataError("'" + file + "' is not a slidetrain patch index (bad magic)");
  uint32_t version = 0;
  std::memcpy(&version, &buf[magicLen], 4);
  if (version != detail::kPatchIndexVersion)
    throw DataError("patch index '" + file + "' has version " + std::to_string(version) +
                    ", this build reads " + std::to_string(detail::kPatchIndexVersion) +
                    "; delete it to rebuild");
  if (buf.size() < magicLen + 4 + 8)
    throw DataError("patch index '" + file + "' is truncated; delete it to rebuild");
  const size_t body = buf.size() - 8;
  uint64_t stored = 0;
  std::memcpy(&stored, &buf[body], 8);
  if (stored != detail::fnv1a(buf.data(), body))
    throw DataError("patch index '" + file + "' is corrupted (checksum mismatch); delete it to "
                    "rebuild");
  Reader r(buf, body, file);
  r.need(magicLen + 4, "header");
  (void)r.get<uint64_t>("magic");
  (void)r.get<uint32_t>("version");
  PatchIndex index;
  index.slidePath = r.getString("slide path");
  index.fingerprint = r.getString("fingerprint");
  index.options.level = r.get<int32_t>("level");
  index.options.size = r.get<int32_t>("size");
  index.options.stride = r.get<int32_t>("stride");
  index.readSize = r.get<int32_t>("read size");
  index.options.minTissue = r.get<double>("min tissue");
  index.levelDownsample = r.get<double>("level downsample");
  if (const double v = r.get<double>("target mpp"); v > 0) index.options.targetMpp = v;
  if (const double v = r.get<double>("target magnification"); v > 0)
    index.options.targetMagnification = v;
  index.options.maxWhiteFraction = r.get<double>("max white fraction");
  index.options.maxBlackFraction = r.get<double>("max black fraction");
  index.options.whiteThreshold = r.get<int32_t>("white threshold");
  index.options.blackThreshold = r.get<int32_t>("black threshold");
  index.patchMpp = r.get<double>("patch mpp");
  index.tissueFraction = r.get<double>("tissue fraction");
  const uint64_t n = r.get<uint64_t>("patch count");
  constexpr size_t kPatchBytes = 8 + 8 + 4 + 4;
  if (n > r.remaining() / kPatchBytes || r.remaining() != n * kPatchBytes)
    throw DataError("patch index '" + file + "' is corrupted (patch count " + std::to_string(n) +
                    " does not match the file size); delete it to rebuild");
  try {
    index.options.validate();
  } catch (const std::invalid_argument& e) {
    throw DataError("patch index '" + file + "' holds invalid options (" + e.what() + ")");
  }
  if (index.readSize < 1 || index.readSize > 1 << 20 || !(index.levelDownsample > 0))
    throw DataError("patch index '" + file + "' holds an invalid read size or downsample; "
                    "delete it to rebuild");
  index.patches.resize(n);
  for (auto& p : index.patches) {
    p.x = r.get<int64_t>("x"), p.y = r.get<int64_t>("y");
    p.tissue = r.get<float>("tissue"), p.label = r.get<int32_t>("label");
  }
  return index;
}

}  // namespace slidetrain::wsi
