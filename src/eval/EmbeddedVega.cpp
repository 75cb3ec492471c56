// EmbeddedVega: see EmbeddedVega.h (embeddedVegaFiles() itself is generated at build time).
#include "src/eval/EmbeddedVega.h"

#include <map>
#include <sstream>
#include <stdexcept>

namespace slidetrain {

std::string_view embeddedVegaFile(const std::string& name) {
  for (const EmbeddedFile& f : embeddedVegaFiles())
    if (name == f.name) return f.bytes;
  throw std::logic_error("embeddedVegaFile: no embedded file " + name +
                         " (cmake/EmbedFiles.cmake's list in src/CMakeLists.txt)");
}

const std::vector<std::string>& vegaScriptNames() {
  static const std::vector<std::string> names = {"vega.min.js", "vega-lite.min.js", "vega-embed.min.js"};
  return names;
}

std::string vegaVersions() {
  // versions.txt: "<npm package> <version> <file> <integrity>" per line (tools/vendor_js.sh).
  static const std::map<std::string, std::string> shown = {
      {"vega", "Vega"}, {"vega-lite", "Vega-Lite"}, {"vega-embed", "vega-embed"}};
  std::istringstream in{std::string(embeddedVegaFile("versions.txt"))};
  std::string package, version, rest, out;
  while (in >> package >> version && std::getline(in, rest)) {
    const auto it = shown.find(package);
    out += (out.empty() ? "" : ", ") + (it != shown.end() ? it->second : package) + " " + version;
  }
  return out;
}

}  // namespace slidetrain
