#include "src/mil/FeatureFile.h"

#include <filesystem>

#include <ATen/ATen.h>

#include "src/mil/Hdf5.h"
#include "src/runtime/DurableFile.h"
#include "wsi/Errors.h"

namespace fs = std::filesystem;

namespace slidetrain::mil {

void writeFeatureFile(const std::string& path, const at::Tensor& features,
                      const std::vector<int64_t>& coords, const FeatureFileInfo& info, bool float16) {
  const at::Tensor f = features.to(at::kCPU, at::kFloat).contiguous();
  const int64_t n = f.size(0), d = f.dim() == 2 ? f.size(1) : 0;
  if (static_cast<int64_t>(coords.size()) != 2 * n)
    throw wsi::DataError(path + ": " + std::to_string(n) + " feature rows but " +
                         std::to_string(coords.size() / 2) + " coordinates");
  writeFileDurably(path, [&](const std::string& tmp) {
    h5::File file = h5::File::create(tmp);
    file.writeFloat("features", f.data_ptr<float>(), n, d, float16 ? h5::Type::Float16 : h5::Type::Float32);
    file.writeInt64("coords", coords.data(), n, 2);
    file.setAttr("/", "slide_id", info.slideId);
    file.setAttr("/", "encoder", info.encoder);
    file.setAttr("/", "encoder_weights", info.encoderWeights);
    file.setAttr("/", "fingerprint", info.fingerprint);
    file.setAttr("/", "patch_size", info.patchSize);
    file.setAttr("/", "patch_size_level0", info.patchSizeLevel0);
    file.setAttr("/", "patch_level", info.patchLevel);
    file.setAttr("/", "mpp", info.mpp);
    file.setAttr("/", "input_size", info.inputSize);
    file.setAttr("/", "slidetrain_version", std::string(SLIDETRAIN_VERSION_STRING));
    // CLAM's create_patches attributes on the coordinates.
    file.setAttr("coords", "patch_size", info.patchSize);
    file.setAttr("coords", "patch_level", info.patchLevel);
    file.setAttr("coords", "patch_size_level0", info.patchSizeLevel0);
    file.setAttr("coords", "name", info.slideId);
    file.close();
  });
}

std::string storedFingerprint(const std::string& path) {
  if (!fs::is_regular_file(path)) return "";
  try {
    h5::File file = h5::File::open(path);
    if (!file.hasDataset("features") || !file.hasDataset("coords") || !file.hasAttr("/", "fingerprint"))
      return "";
    return file.attrString("/", "fingerprint");
  } catch (const std::exception&) {
    return "";  // unreadable: rebuilt
  }
}

Bag readFeatureFile(const std::string& path) {
  h5::File file = h5::File::open(path);
  for (const char* name : {"features", "coords"})
    if (!file.hasDataset(name))
      throw wsi::DataError(path + ": no '" + name + "' dataset (not a slidetrain/CLAM feature file)");
  const auto fs = file.shape("features"), cs = file.shape("coords");
  if (fs.size() != 2) throw wsi::DataError(path + ": 'features' must be 2-D [N, D]");
  if (cs.size() != 2 || cs[1] != 2 || cs[0] != fs[0])
    throw wsi::DataError(path + ": 'coords' must be [N, 2] with N = " + std::to_string(fs[0]) +
                         " (the rows of 'features')");
  Bag bag;
  std::vector<float> values = file.readFloat("features");
  bag.features = at::from_blob(values.data(), {fs[0], fs[1]}, at::kFloat).clone();
  bag.coords = file.readInt64("coords");
  FeatureFileInfo& i = bag.info;
  auto str = [&](const char* key) { return file.hasAttr("/", key) ? file.attrString("/", key) : std::string(); };
  auto num = [&](const char* key) { return file.hasAttr("/", key) ? file.attrInt("/", key) : int64_t{0}; };
  i.slideId = str("slide_id");
  i.encoder = str("encoder");
  i.encoderWeights = str("encoder_weights");
  i.fingerprint = str("fingerprint");
  i.patchSize = num("patch_size");
  i.patchSizeLevel0 = num("patch_size_level0");
  i.patchLevel = num("patch_level");
  i.inputSize = num("input_size");
  i.mpp = file.hasAttr("/", "mpp") ? file.attrDouble("/", "mpp") : 0.0;
  return bag;
}

}  // namespace slidetrain::mil
