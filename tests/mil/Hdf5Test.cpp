// The HDF5 wrapper: datasets and attributes round-trip (float16 within half precision), and a
// missing, truncated or foreign file is an error naming the file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "src/mil/Hdf5.h"
#include "wsi/Errors.h"

namespace fs = std::filesystem;
using namespace slidetrain;

namespace {

fs::path tempDir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("slidetrain_h5_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

}  // namespace

TEST(Hdf5, DatasetsAndAttributesRoundTrip) {
  const fs::path dir = tempDir("roundtrip");
  const std::string path = (dir / "a.h5").string();
  std::vector<float> f(6 * 4);
  for (size_t i = 0; i < f.size(); ++i) f[i] = 0.1f * static_cast<float>(i) - 1.0f;
  std::vector<int64_t> c{0, 0, 256, 0, 512, 1024, 3, 4, 5, 6, 1LL << 40, 7};
  {
    h5::File file = h5::File::create(path);
    file.writeFloat("features", f.data(), 6, 4);
    file.writeFloat("features16", f.data(), 6, 4, h5::Type::Float16);
    file.writeInt64("coords", c.data(), 6, 2);
    file.setAttr("/", "encoder", std::string("small_cnn"));
    file.setAttr("coords", "patch_size", int64_t{256});
    file.setAttr("/", "mpp", 0.25);
    file.close();
  }
  h5::File file = h5::File::open(path);
  EXPECT_EQ(file.shape("features"), (std::vector<int64_t>{6, 4}));
  EXPECT_EQ(file.readFloat("features"), f);
  EXPECT_EQ(file.storedType("features"), h5::Type::Float32);
  EXPECT_EQ(file.storedType("features16"), h5::Type::Float16);
  const auto half = file.readFloat("features16");
  for (size_t i = 0; i < f.size(); ++i) EXPECT_NEAR(half[i], f[i], 1e-3) << i;
  EXPECT_EQ(file.readInt64("coords"), c);
  EXPECT_EQ(file.attrString("/", "encoder"), "small_cnn");
  EXPECT_EQ(file.attrInt("coords", "patch_size"), 256);
  EXPECT_DOUBLE_EQ(file.attrDouble("/", "mpp"), 0.25);
  EXPECT_TRUE(file.hasAttr("/", "mpp"));
  EXPECT_FALSE(file.hasAttr("/", "nope"));
  EXPECT_FALSE(file.hasDataset("nope"));
  try {
    file.shape("nope");
    FAIL() << "no error for a missing dataset";
  } catch (const wsi::DataError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Hdf5, MissingTruncatedOrForeignFilesNameTheFile) {
  const fs::path dir = tempDir("bad");
  const std::string good = (dir / "good.h5").string();
  {
    std::vector<float> f(1000 * 64, 1.0f);
    h5::File file = h5::File::create(good);
    file.writeFloat("features", f.data(), 1000, 64);
    file.close();
  }
  // Truncated: the first half of a valid file.
  const std::string cut = (dir / "cut.h5").string();
  {
    std::ifstream in(good, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  const std::string text = (dir / "text.h5").string();
  std::ofstream(text) << "not hdf5\n";
  for (const std::string& p : {(dir / "missing.h5").string(), cut, text}) {
    try {
      h5::File f = h5::File::open(p);
      (void)f.readFloat("features");
      FAIL() << "no error for " << p;
    } catch (const wsi::DataError& e) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    }
  }
  fs::remove_all(dir);
}
