// encodeJpeg writes a complete baseline JPEG of the image's size (the SOF0 frame header read
// back), and refuses what is no image.
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "wsi/Errors.h"
#include "wsi/JpegWriter.h"

namespace slidetrain::wsi {
namespace {

TEST(JpegWriter, WritesABaselineJpegOfTheImagesSize) {
  RgbImage img;
  img.width = 37, img.height = 21;
  img.pixels.resize(37 * 21 * 3);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 7);
  const std::string jpg = encodeJpeg(img, 80);
  ASSERT_GT(jpg.size(), 100u);
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(jpg[i]); };
  EXPECT_EQ(byte(0), 0xFF);  // SOI
  EXPECT_EQ(byte(1), 0xD8);
  EXPECT_EQ(byte(jpg.size() - 2), 0xFF);  // EOI
  EXPECT_EQ(byte(jpg.size() - 1), 0xD9);
  const size_t sof = jpg.find("\xFF\xC0");  // baseline frame: length(2) precision(1) height(2) width(2)
  ASSERT_NE(sof, std::string::npos);
  EXPECT_EQ(byte(sof + 5) * 256 + byte(sof + 6), 21);
  EXPECT_EQ(byte(sof + 7) * 256 + byte(sof + 8), 37);
  EXPECT_LT(encodeJpeg(img, 10).size(), encodeJpeg(img, 95).size());
}

TEST(JpegWriter, RefusesWhatIsNoImage) {
  RgbImage empty;
  EXPECT_THROW(encodeJpeg(empty), DataError);
  RgbImage shortOfPixels;
  shortOfPixels.width = 4, shortOfPixels.height = 4;
  shortOfPixels.pixels.resize(10);
  EXPECT_THROW(encodeJpeg(shortOfPixels), DataError);
  RgbImage ok;
  ok.width = 1, ok.height = 1;
  ok.pixels = {1, 2, 3};
  EXPECT_THROW(encodeJpeg(ok, 0), DataError);
  EXPECT_NO_THROW(encodeJpeg(ok, 100));
}

}  // namespace
}  // namespace slidetrain::wsi
