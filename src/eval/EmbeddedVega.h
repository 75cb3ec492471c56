#pragma once
// The JavaScript report.html inlines (Vega, Vega-Lite, vega-embed) and its licences, carried in
// the program so that an installed slidetrain needs no file beside it: third_party/vega/ holds
// the files, cmake/EmbedFiles.cmake turns them into byte arrays at build time
// (third_party/vega/README.md says where they come from and how to update them).
#include <string>
#include <string_view>
#include <vector>

namespace slidetrain {

struct EmbeddedFile {
  const char* name;        ///< the file's name in third_party/vega/
  std::string_view bytes;  ///< its contents
};

/// vega.min.js, vega-lite.min.js, vega-embed.min.js (in the order a page must load them), then
/// LICENSE-vega, LICENSE-vega-lite, LICENSE-vega-embed, THIRD_PARTY_NOTICES.txt, versions.txt.
/// Defined in the generated <build>/generated/EmbeddedVega.cpp.
const std::vector<EmbeddedFile>& embeddedVegaFiles();

/// The bytes of the embedded file `name`; throws std::logic_error when there is none.
std::string_view embeddedVegaFile(const std::string& name);

/// The scripts a page loads, in order: vega.min.js, vega-lite.min.js, vega-embed.min.js.
const std::vector<std::string>& vegaScriptNames();

/// "Vega 6.4.0, Vega-Lite 6.5.0, vega-embed 7.3.0", from versions.txt.
std::string vegaVersions();

}  // namespace slidetrain
