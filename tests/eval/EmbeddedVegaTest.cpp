// The JavaScript built into the program (cmake/EmbedFiles.cmake) is byte for byte the vendored
// files of third_party/vega, and report.html can inline it as <script> text.
#include <fstream>
#include <iterator>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "src/eval/EmbeddedVega.h"

namespace slidetrain {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(EmbeddedVega, BytesAreTheVendoredFiles) {
  const auto& files = embeddedVegaFiles();
  ASSERT_EQ(files.size(), 8u);
  for (const EmbeddedFile& f : files) {
    const std::string onDisk = readFile(std::string(SLIDETRAIN_SOURCE_DIR) + "/third_party/vega/" + f.name);
    EXPECT_GT(onDisk.size(), 0u) << f.name;
    EXPECT_TRUE(f.bytes == onDisk) << f.name << ": " << f.bytes.size() << " bytes embedded, "
                                   << onDisk.size() << " on disk";
  }
  EXPECT_THROW(embeddedVegaFile("d3.min.js"), std::logic_error);
}

TEST(EmbeddedVega, ScriptsLoadInOrderAndCanBeInlined) {
  const auto& names = vegaScriptNames();
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(names[0], "vega.min.js");  // vega-lite needs window.vega; vega-embed needs both
  EXPECT_EQ(names[2], "vega-embed.min.js");
  // Inside <script>, "</script" would end the element early (the report's writer also refuses it).
  for (const auto& n : names) {
    const std::string_view js = embeddedVegaFile(n);
    EXPECT_GT(js.size(), 50000u) << n;
    EXPECT_EQ(js.find("</script"), std::string_view::npos) << n;
    EXPECT_EQ(js.find("</SCRIPT"), std::string_view::npos) << n;
  }
}

TEST(EmbeddedVega, VersionsComeFromVersionsTxt) {
  EXPECT_TRUE(std::regex_match(vegaVersions(),
                               std::regex(R"(Vega \d+\.\d+\.\d+, Vega-Lite \d+\.\d+\.\d+, vega-embed \d+\.\d+\.\d+)")))
      << vegaVersions();
}

}  // namespace
}  // namespace slidetrain
