// The slide viewer: deep-zoom layout (levels, tile size, aspect ratio), the inline tile source
// and the page (src/eval/Viewer.h, src/eval/SlideViewer.h, wsi/DeepZoom.h). That the page works
// in a browser is tests/e2e/viewer_browser_test.sh's job.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <unistd.h>

#include "src/eval/SlideViewer.h"
#include "src/eval/Viewer.h"
#include "wsi/DeepZoom.h"
#include "wsi/ImageIo.h"

namespace fs = std::filesystem;
using namespace slidetrain;

namespace {

fs::path tempDir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("slidetrain_viewer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string readAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A 1000 x 600 pyramidal TIFF slide (OpenSlide: generic-tiff), a colour gradient.
std::string writeSlide(const fs::path& dir) {
  const int w = 1000, h = 600;
  std::vector<uint8_t> rgba(size_t(w) * h * 4, 255);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgba[(size_t(y) * w + x) * 4];
      p[0] = uint8_t(x / 4), p[1] = uint8_t(y / 3), p[2] = 128;
    }
  const std::string path = (dir / "slide.tiff").string();
  wsi::writePyramidTiff(rgba.data(), w, h, path);
  return path;
}

// The levels dzsave wrote: the numbered folders of <base>_files.
int levelFolders(const fs::path& files) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(files)) n += e.is_directory();
  return n;
}

}  // namespace

TEST(Viewer, DeepZoomLevelsGoDownToOnePixel) {
  EXPECT_EQ(wsi::deepZoomLevels(1, 1), 1);
  EXPECT_EQ(wsi::deepZoomLevels(2, 1), 2);
  EXPECT_EQ(wsi::deepZoomLevels(3, 2), 3);    // 3 -> 2 -> 1
  EXPECT_EQ(wsi::deepZoomLevels(512, 300), 10);
  EXPECT_EQ(wsi::deepZoomLevels(300, 513), 11);
}

TEST(Viewer, TileSourceIsTheDziAsAnObject) {
  DeepZoomSource s{"a%20b_files/", "jpeg", 254, 1, 512, 307};
  EXPECT_EQ(deepZoomTileSourceJson(s),
            "{\"Image\":{\"xmlns\":\"http://schemas.microsoft.com/deepzoom/2008\",\"Url\":\"a%20b_files/\","
            "\"Format\":\"jpeg\",\"Overlap\":\"1\",\"TileSize\":\"254\",\"Size\":{\"Width\":\"512\",\"Height\":\"307\"}}}");
  EXPECT_EQ(urlEncodePathPart("s 1#x?.html"), "s%201%23x%3F.html");
}

TEST(Viewer, SlidePyramidKeepsTheAspectAndTheTileSize) {
  const fs::path d = tempDir("slide");
  const std::string slide = writeSlide(d);
  const wsi::DeepZoomLayout l = wsi::writeSlideDeepZoom(slide, {}, 512, (d / "s").string());
  EXPECT_EQ(l.width, 512);  // fitted into 512 x 512, never enlarged
  EXPECT_NEAR(l.height, 512 * 600.0 / 1000, 1.0);
  EXPECT_EQ(l.format, "jpeg");
  EXPECT_EQ(l.tileSize, 254);
  EXPECT_EQ(l.levels, 10);
  EXPECT_EQ(levelFolders(d / "s_files"), l.levels);
  // The full level: 3 x 2 tiles of 254 plus overlap; the first is 255 x 255 (no overlap at the
  // image's edge), the last column holds the rest: 512 - 2 * 254 + 1 = 5 pixels wide.
  const fs::path top = d / "s_files" / std::to_string(l.levels - 1);
  EXPECT_TRUE(fs::exists(top / "2_1.jpeg"));
  EXPECT_FALSE(fs::exists(top / "3_0.jpeg"));
  EXPECT_FALSE(fs::exists(top / "0_2.jpeg"));
  const auto first = wsi::Slide::open((top / "0_0.jpeg").string());
  EXPECT_EQ(first->levelDimensions(0), (std::array<int64_t, 2>{255, 255}));
  const auto corner = wsi::Slide::open((top / "2_1.jpeg").string());
  EXPECT_EQ(corner->levelDimensions(0), (std::array<int64_t, 2>{5, l.height - 254 + 1}));
  EXPECT_TRUE(fs::exists(d / "s_files" / "0" / "0_0.jpeg"));  // the one-pixel level
  EXPECT_NE(readAll(d / "s.dzi").find("Width=\"512\""), std::string::npos);
  // 300 px are read from the 500 x 300 level and shrunk: 300 x 180.
  const wsi::DeepZoomLayout small = wsi::writeSlideDeepZoom(slide, {}, 300, (d / "small").string());
  EXPECT_EQ(small.width, 300);
  EXPECT_EQ(small.height, 180);
  EXPECT_EQ(levelFolders(d / "small_files"), 10);
  // A maximum larger than the slide keeps level 0's size.
  EXPECT_EQ(wsi::writeSlideDeepZoom(slide, {}, 4096, (d / "full").string()).width, 1000);
  fs::remove_all(d);
}

TEST(Viewer, PageShowsTheSlideAndItsHeatmapWithNothingFetchedButTiles) {
  const fs::path d = tempDir("page");
  ViewerSlide v{"s 1", writeSlide(d), {}, {{"label", "tumor"}, {"prediction", "normal"}}};
  SlidePredictions p;  // two 200-px patches in the top-left corner
  p.slideId = v.slideId;
  p.classes = {"normal", "tumor"};
  p.side0 = p.step0 = 200;
  p.origins = {{0, 0}, {200, 0}};
  p.probs = {0.9f, 0.1f, 0.2f, 0.8f};
  EXPECT_EQ(writeSlideViewer((d / "viewer").string(), v, p, 512, "../report.html"), "s%201.html");
  // The heatmap raster: 5 x 3 cells of 200 px would take ceil(1024 / 5) = 205 px each, but it is
  // never finer than level 0: 200 px each, 1000 x 600; transparent PNG tiles.
  EXPECT_EQ(levelFolders(d / "viewer" / "s 1_heatmap_files"), 11);
  EXPECT_TRUE(fs::exists(d / "viewer" / "s 1_heatmap_files" / "10" / "0_0.png"));
  const std::string html = readAll(d / "viewer" / "s 1.html");
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("sourceMappingURL"), std::string::npos);
  EXPECT_NE(html.find("<script data-library=\"openseadragon.min.js\">"), std::string::npos);
  EXPECT_NE(html.find("drawer: 'canvas'"), std::string::npos);
  EXPECT_NE(html.find("showNavigationControl: false"), std::string::npos);
  EXPECT_NE(html.find("\"slide\":{\"url\":\"s%201_files/\",\"format\":\"jpeg\",\"tileSize\":254,\"overlap\":1,"
                      "\"width\":512,\"height\":307}"), std::string::npos);
  // The overlay spans the raster's 1000 px of one level-0 px: the slide's width.
  const std::regex overlay("\"name\":\"heatmap\",\"worldWidth\":([0-9.]+),\"opacity\":0.5,\"source\":\\{\"url\":"
                           "\"s%201_heatmap_files/\",\"format\":\"png\",\"tileSize\":254,\"overlap\":1,"
                           "\"width\":1000,\"height\":600\\}");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(html, m, overlay)) << html.substr(html.find("viewer-config"), 600);
  EXPECT_NEAR(std::stod(m[1]), 1.0, 1e-9);
  EXPECT_NE(html.find("<a href=\"../report.html\">"), std::string::npos);
  EXPECT_NE(html.find("<b>prediction:</b> normal"), std::string::npos);
  EXPECT_NE(html.find("Licence of OpenSeadragon 5.0.1"), std::string::npos);
  // A slide without a scored patch gets the page without an overlay.
  SlidePredictions none;
  none.classes = p.classes;
  v.slideId = "empty";
  EXPECT_EQ(writeSlideViewer((d / "viewer").string(), v, none, 256, ""), "empty.html");
  EXPECT_NE(readAll(d / "viewer" / "empty.html").find("\"overlays\":[]"), std::string::npos);
  EXPECT_FALSE(fs::exists(d / "viewer" / "empty_heatmap_files"));
  fs::remove_all(d);
}
