#include "src/eval/Viewer.h"

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "src/eval/ReportHtml.h"
#include "wsi/JsonWriter.h"

namespace slidetrain {
namespace {

using report::escapeHtml;

std::string_view osdFile(const std::string& name) {
  for (const EmbeddedFile& f : embeddedOpenSeadragonFiles())
    if (name == f.name) return f.bytes;
  throw std::logic_error("viewer: no embedded file " + name + " (src/CMakeLists.txt)");
}

/// openseadragon.min.js without its last line's source-map comment: inlined, the browser's
/// developer tools would look for the map beside the page, where there is none.
std::string osdScript() {
  std::string js(osdFile("openseadragon.min.js"));
  const size_t map = js.rfind("//# sourceMappingURL=");
  if (map != std::string::npos) js.erase(map);
  if (js.find("</script") != std::string::npos || js.find("<!--") != std::string::npos)
    throw std::logic_error("viewer: openseadragon.min.js holds \"</script\" or \"<!--\" and cannot be inlined");
  return js;
}

constexpr const char* kStyle =
    "html,body{margin:0;height:100%;font-family:sans-serif}body{display:flex;flex-direction:column}"
    "header{padding:6px 12px;border-bottom:1px solid #ccc;display:flex;flex-wrap:wrap;gap:6px 18px;"
    "align-items:center}header h1{font-size:1.1em;margin:0}.fact b{font-weight:normal;color:#555}"
    "#viewer{flex:1;background:#222;min-height:300px}.legend{display:inline-block;width:120px;height:10px;"
    "background:linear-gradient(to right,rgb(0,40,255),rgb(255,40,0));vertical-align:middle}"
    "details{padding:4px 12px}details pre{max-height:300px;overflow:auto;background:#f6f6f6}";

// Opens the images, wires the controls, reports progress on <body>. World unit: the slide's width.
constexpr const char* kLoader = R"JS((function () {
  var cfg = JSON.parse(document.getElementById('viewer-config').textContent);
  var body = document.body, names = ['slide'], tiles = {slide: 0};
  function fail(why) { body.setAttribute('data-viewer', 'failed: ' + why); console.error('viewer: ' + why); }
  function dzi(s) {
    return {Image: {xmlns: 'http://schemas.microsoft.com/deepzoom/2008', Url: s.url, Format: s.format,
      Overlap: String(s.overlap), TileSize: String(s.tileSize),
      Size: {Width: String(s.width), Height: String(s.height)}}};
  }
  var sources = [{tileSource: dzi(cfg.slide)}];
  cfg.overlays.forEach(function (o) {
    names.push(o.name); tiles[o.name] = 0;
    sources.push({tileSource: dzi(o.source), x: 0, y: 0, width: o.worldWidth, opacity: o.opacity});
  });
  var viewer = OpenSeadragon({id: 'viewer', drawer: 'canvas', tileSources: sources, sequenceMode: false,
    showNavigationControl: false, showNavigator: true, navigatorPosition: 'BOTTOM_RIGHT', prefixUrl: '',
    visibilityRatio: 0.5, maxZoomPixelRatio: 4});
  function settle() {
    var n = viewer.world.getItemCount(), done = n === names.length;
    for (var i = 0; i < n; ++i) done = done && viewer.world.getItemAt(i).getFullyLoaded();
    body.setAttribute('data-tiles', names.map(function (k) { return k + ':' + tiles[k]; }).join(','));
    if (done && !/^failed/.test(body.getAttribute('data-viewer'))) body.setAttribute('data-viewer', 'loaded ' + n + ' images');
  }
  viewer.addHandler('open', function () {
    for (var i = 0; i < viewer.world.getItemCount(); ++i) viewer.world.getItemAt(i).addHandler('fully-loaded-change', settle);
    settle();
  });
  viewer.addHandler('open-failed', function (e) { fail('cannot open: ' + e.message); });
  viewer.addHandler('add-item-failed', function (e) { fail('cannot add an image: ' + e.message); });
  viewer.addHandler('tile-load-failed', function (e) { fail('tile not loaded: ' + e.message); });
  viewer.addHandler('tile-loaded', function (e) {
    var i = viewer.world.getIndexOfItem(e.tiledImage);
    if (i >= 0) tiles[names[i]] += 1;
    settle();
  });
  cfg.overlays.forEach(function (o, k) {
    var show = document.getElementById('show-' + k), slider = document.getElementById('opacity-' + k);
    function apply() {
      var item = viewer.world.getItemAt(k + 1);
      if (item) item.setOpacity(show.checked ? slider.value / 100 : 0);
    }
    show.addEventListener('change', apply);
    slider.addEventListener('input', apply);
  });
  document.getElementById('zoom-in').onclick = function () { viewer.viewport.zoomBy(2); };
  document.getElementById('zoom-out').onclick = function () { viewer.viewport.zoomBy(0.5); };
  document.getElementById('home').onclick = function () { viewer.viewport.goHome(); };
})();)JS";

void writeSource(wsi::JsonWriter& w, const DeepZoomSource& s) {
  w.beginObject().key("url").value(s.url).key("format").value(s.format).key("tileSize").value(s.tileSize);
  w.key("overlap").value(s.overlap).key("width").value(s.width).key("height").value(s.height).endObject();
}

}  // namespace

std::string urlEncodePathPart(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      o += static_cast<char>(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      o += b;
    }
  }
  return o;
}

std::string deepZoomTileSourceJson(const DeepZoomSource& s) {
  std::ostringstream o;
  wsi::JsonWriter w(o, wsi::JsonStyle::compact());
  w.beginObject().key("Image").beginObject();
  w.key("xmlns").value("http://schemas.microsoft.com/deepzoom/2008").key("Url").value(s.url);
  w.key("Format").value(s.format).key("Overlap").value(std::to_string(s.overlap));
  w.key("TileSize").value(std::to_string(s.tileSize)).key("Size").beginObject();
  w.key("Width").value(std::to_string(s.width)).key("Height").value(std::to_string(s.height));
  w.endObject().endObject().endObject();
  return o.str();
}

void writeViewerHtml(const std::string& path, const ViewerPage& page) {
  std::ostringstream o;
  o << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << escapeHtml(page.title)
    << " - slidetrain viewer</title>\n<style>" << kStyle << "</style></head>\n<body data-viewer=\"loading\">\n<header>";
  if (!page.backLink.empty()) o << "<a href=\"" << escapeHtml(page.backLink) << "\">&larr; report</a>";
  o << "<h1>" << escapeHtml(page.title) << "</h1>";
  for (const ReportFact& f : page.facts)
    o << "<span class=\"fact\"><b>" << escapeHtml(f.name) << ":</b> " << escapeHtml(f.value) << "</span>";
  for (size_t k = 0; k < page.overlays.size(); ++k) {
    const ViewerOverlay& v = page.overlays[k];
    o << "<span><label><input type=\"checkbox\" id=\"show-" << k << "\" checked> " << escapeHtml(v.name)
      << "</label> <input type=\"range\" id=\"opacity-" << k << "\" min=\"0\" max=\"100\" value=\""
      << static_cast<int>(v.opacity * 100 + 0.5) << "\" title=\"opacity\"> <span class=\"legend\"></span> "
      << escapeHtml(v.legend) << "</span>";
  }
  o << "<span><button id=\"zoom-in\">+</button> <button id=\"zoom-out\">&minus;</button> "
       "<button id=\"home\">fit</button></span></header>\n<div id=\"viewer\"></div>\n";
  std::ostringstream cfg;
  wsi::JsonWriter w(cfg, wsi::JsonStyle::compact());
  w.beginObject().key("slide");
  writeSource(w, page.slide);
  w.key("overlays").beginArray();
  for (const ViewerOverlay& v : page.overlays) {
    w.beginObject().key("name").value(v.name).key("worldWidth").value(v.worldWidth);
    w.key("opacity").value(v.opacity).key("source");
    writeSource(w, v.source);
    w.endObject();
  }
  w.endArray().endObject();
  std::istringstream versions{std::string(osdFile("versions.txt"))};  // "openseadragon 5.0.1 ..."
  std::string package, version;
  versions >> package >> version;
  o << "<details><summary>Licence of OpenSeadragon " << escapeHtml(version)
    << " (the viewer's JavaScript, inlined)</summary><pre>" << escapeHtml(std::string(osdFile("LICENSE.txt")))
    << "</pre></details>\n<script data-library=\"openseadragon.min.js\">\n" << osdScript()
    << "\n</script>\n<script type=\"application/json\" id=\"viewer-config\">" << report::jsonForScript(cfg.str())
    << "</script>\n<script>" << kLoader << "</script>\n</body></html>\n";
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error(path + ": cannot write the viewer page");
  out << o.str();
  if (!out.flush()) throw std::runtime_error(path + ": cannot write the viewer page");
}

}  // namespace slidetrain
