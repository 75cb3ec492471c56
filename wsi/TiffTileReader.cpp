// Direct tiled-JPEG reader. libtiff is used once, at open, to list the directories, tile offsets,
// byte counts and JPEGTables; after that tiles are read with pread() on one descriptor (no shared
// file position, so no lock) and decoded with libjpeg exactly as OpenSlide 3.4.1's
// _openslide_tiff_read_tile does: tables first (abbreviated stream), jpeg_color_space forced from
// the TIFF photometric tag (Aperio writes RGB-encoded JPEG), default DCT and upsampling, libjpeg
// warnings turned into errors, no jpeg_finish_decompress.
#include "wsi/TiffTileReader.h"

#include <fcntl.h>
#include <unistd.h>

#include <csetjmp>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>
#include <tiffio.h>

#include "wsi/Errors.h"
#include "wsi/TiffLayout.h"
#include "wsi/SlideReader.h"

namespace slidetrain::wsi {

// ---- TileCache -----------------------------------------------------------------------------
void TileCache::evictLocked() {
  while (bytes_ > maxBytes_ && lru_.size() > 1) {
    auto it = map_.find(lru_.back());
    bytes_ -= it->second.bytes;
    map_.erase(it);
    lru_.pop_back();
  }
}

size_t TileCache::bytes() const {
  std::lock_guard<std::mutex> lk(mu_);
  return bytes_;
}

// ---- JPEG decoding -----------------------------------------------------------------------------
namespace {

struct JpegError {
  jpeg_error_mgr base;
  std::jmp_buf env;
  char message[JMSG_LENGTH_MAX];
};

extern "C" void jpegErrorExit(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->env, 1);
}
extern "C" void jpegEmitMessage(j_common_ptr cinfo, int level) {
  if (level < 0) (*cinfo->err->error_exit)(cinfo);  // warnings are errors, as in OpenSlide
}
extern "C" void jpegOutputMessage(j_common_ptr) {}

/// Decodes one tile into `out` (w*h*3). Returns false with `message` set on failure. Plain C
/// data only between setjmp and longjmp.
bool decodeJpeg(const uint8_t* tables, size_t tablesLen, const uint8_t* data, size_t len,
                bool ycbcr, int w, int h, uint8_t* out, char* message) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.base);
  err.base.error_exit = jpegErrorExit;
  err.base.emit_message = jpegEmitMessage;
  err.base.output_message = jpegOutputMessage;
  err.message[0] = 0;
  jpeg_create_decompress(&cinfo);
  if (setjmp(err.env)) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(message, JMSG_LENGTH_MAX, "%s", err.message);
    return false;
  }
  if (tablesLen > 0) {
    jpeg_mem_src(&cinfo, tables, static_cast<unsigned long>(tablesLen));
    if (jpeg_read_header(&cinfo, FALSE) != JPEG_HEADER_TABLES_ONLY) {
      jpeg_destroy_decompress(&cinfo);
      std::snprintf(message, JMSG_LENGTH_MAX, "couldn't load JPEG tables");
      return false;
    }
  }
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(len));
  if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
    jpeg_destroy_decompress(&cinfo);
    std::snprintf(message, JMSG_LENGTH_MAX, "couldn't read JPEG header");
    return false;
  }
  cinfo.jpeg_color_space = ycbcr ? JCS_YCbCr : JCS_RGB;  // from the TIFF photometric tag
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  if (static_cast<int>(cinfo.output_width) != w || static_cast<int>(cinfo.output_height) != h ||
      cinfo.output_components != 3) {
    std::snprintf(message, JMSG_LENGTH_MAX, "JPEG is %ux%u with %d components, expected %dx%d RGB",
                  cinfo.output_width, cinfo.output_height, cinfo.output_components, w, h);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  JSAMPROW rows[16];
  while (cinfo.output_scanline < cinfo.output_height) {
    const int n = std::min<int>(cinfo.rec_outbuf_height, 16);
    for (int i = 0; i < n; ++i) {
      const unsigned r = std::min(cinfo.output_scanline + i, cinfo.output_height - 1);
      rows[i] = out + static_cast<size_t>(r) * w * 3;
    }
    jpeg_read_scanlines(&cinfo, rows, n);
  }
  jpeg_destroy_decompress(&cinfo);  // no finish: trailing junk is not an error for OpenSlide
  return true;
}

std::atomic<uint64_t> nextReaderId{1};

}  // namespace

// ---- TiffTileReader ------------------------------------------------------------------------
struct TiffTileReader::Level {
  int dir = 0;
  int64_t imageW = 0, imageH = 0;
  int tileW = 0, tileH = 0;
  int64_t across = 0, down = 0;
  bool ycbcr = true;
  double downsample = 1;
  std::vector<uint8_t> tables;
  std::vector<uint64_t> offsets, counts;
};

TiffTileReader::~TiffTileReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<TiffTileReader> TiffTileReader::open(const Slide& slide,
                                                     std::array<uint8_t, 3> background,
                                                     std::shared_ptr<TileCache> cache,
                                                     size_t cacheBytes, std::string* whyNot) {
  std::string dummy;
  std::string& why = whyNot ? *whyNot : dummy;
  const std::string vendor = slide.vendor();
  if (slide.backend() != "openslide" || (vendor != "aperio" && vendor != "generic-tiff")) {
    why = "vendor '" + vendor + "' is not read directly";
    return nullptr;
  }
  std::string tiffError;
  auto tif = detail::openTiffQuietly(slide.path(), &tiffError);
  if (!tif) {
    why = "libtiff cannot open it: " + tiffError;
    return nullptr;
  }
  std::unique_ptr<TiffTileReader> r(new TiffTileReader());
  r->path_ = slide.path();
  r->id_ = nextReaderId++;
  r->levels_.resize(static_cast<size_t>(slide.levelCount()));
  r->background_ = background;
  const int dirs = TIFFNumberOfDirectories(tif.get());
  int usable = 0;
  for (int d = 0; d < dirs; ++d) {
    if (!TIFFSetDirectory(tif.get(), static_cast<tdir_t>(d))) break;
    if (!TIFFIsTiled(tif.get())) continue;
    uint32_t iw = 0, ih = 0, tw = 0, th = 0;
    uint16_t compression = 0, planar = 0, photometric = 0, bps = 0, spp = 0;
    TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &iw);
    TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &ih);
    TIFFGetField(tif.get(), TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif.get(), TIFFTAG_TILELENGTH, &th);
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_COMPRESSION, &compression);
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetField(tif.get(), TIFFTAG_PHOTOMETRIC, &photometric);
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLESPERPIXEL, &spp);
    const bool direct = compression == COMPRESSION_JPEG && planar == PLANARCONFIG_CONTIG &&
                        (photometric == PHOTOMETRIC_RGB || photometric == PHOTOMETRIC_YCBCR) &&
                        bps == 8 && spp == 3 && tw > 0 && th > 0;
    if (!direct) continue;
    for (int l = 0; l < slide.levelCount(); ++l) {
      const auto dim = slide.levelDimensions(l);
      if (r->levels_[l] || dim[0] != iw || dim[1] != ih) continue;
      auto lv = std::make_unique<Level>();
      lv->dir = d;
      lv->imageW = iw, lv->imageH = ih, lv->tileW = int(tw), lv->tileH = int(th);
      lv->across = (iw + tw - 1) / tw, lv->down = (ih + th - 1) / th;
      lv->ycbcr = photometric == PHOTOMETRIC_YCBCR;
      lv->downsample = slide.levelDownsample(l);
      const size_t n = TIFFNumberOfTiles(tif.get());
      uint64_t *offsets = nullptr, *counts = nullptr;
      if (!TIFFGetField(tif.get(), TIFFTAG_TILEOFFSETS, &offsets) ||
          !TIFFGetField(tif.get(), TIFFTAG_TILEBYTECOUNTS, &counts) || !offsets || !counts ||
          n < static_cast<size_t>(lv->across * lv->down))
        break;
      lv->offsets.assign(offsets, offsets + n);
      lv->counts.assign(counts, counts + n);
      uint32_t tablesLen = 0;
      void* tables = nullptr;
      if (TIFFGetField(tif.get(), TIFFTAG_JPEGTABLES, &tablesLen, &tables) && tables && tablesLen)
        lv->tables.assign(static_cast<uint8_t*>(tables), static_cast<uint8_t*>(tables) + tablesLen);
      r->levels_[l] = std::move(lv);
      ++usable;
      break;
    }
  }
  if (usable == 0) {
    why = "no level is a tiled JPEG directory";
    return nullptr;
  }
  r->fd_ = ::open(r->path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (r->fd_ < 0) {
    why = "cannot open for reading: " + std::string(std::strerror(errno));
    return nullptr;
  }
  r->cache_ = cache ? std::move(cache) : std::make_shared<TileCache>(cacheBytes);
  return r;
}

bool TiffTileReader::supportsLevel(int level) const {
  return level >= 0 && static_cast<size_t>(level) < levels_.size() && levels_[level];
}

std::array<int, 2> TiffTileReader::tileSize(int level) const {
  if (!supportsLevel(level)) return {0, 0};
  return {levels_[level]->tileW, levels_[level]->tileH};
}

TiffTileReader::Stats TiffTileReader::stats() const {
  return {tilesDecoded_.load(), cacheHits_.load(), decodedBytes_.load(), compressedBytes_.load()};
}

TileCache::TilePtr TiffTileReader::tile(const Level& lv, int level, int64_t col, int64_t row,
                                        int64_t x, int64_t y, int w, int h) const {
  const int64_t index = row * lv.across + col;
  bool decoded = false;
  auto decode = [&]() -> TileCache::TilePtr {
    auto where = [&] {
      return detail::describeRegion(path_, level, x, y, w, h) + ": tile (" + std::to_string(col) +
             ", " + std::to_string(row) + ")";
    };
    const uint64_t off = lv.offsets[index], len = lv.counts[index];
    std::vector<uint8_t> raw(len);
    size_t got = 0;
    while (got < len) {
      const ssize_t n = ::pread(fd_, raw.data() + got, len - got, static_cast<off_t>(off + got));
      if (n <= 0) throw SlideError(where() + ": cannot read " + std::to_string(len) + " bytes at offset " +
                                   std::to_string(off) + (n < 0 ? ": " + std::string(std::strerror(errno)) : ": file truncated"));
      got += static_cast<size_t>(n);
    }
    auto t = std::make_shared<DecodedTile>();
    t->width = lv.tileW, t->height = lv.tileH;
    t->rgb.resize(static_cast<size_t>(lv.tileW) * lv.tileH * 3);
    char msg[JMSG_LENGTH_MAX];
    if (!decodeJpeg(lv.tables.data(), lv.tables.size(), raw.data(), raw.size(), lv.ycbcr, lv.tileW,
                    lv.tileH, t->rgb.data(), msg))
      throw SlideError(where() + ": JPEG decode failed: " + msg);
    compressedBytes_ += static_cast<int64_t>(len);
    return t;
  };
  auto t = cache_->get(TileCache::Key{id_, level, index}, decode, &decoded);
  if (decoded) {
    ++tilesDecoded_;
    decodedBytes_ += static_cast<int64_t>(t->rgb.size());
  } else {
    ++cacheHits_;
  }
  return t;
}

bool TiffTileReader::tryReadRegion(int64_t x, int64_t y, int level, int w, int h,
                                   RgbImage& out) const {
  if (!supportsLevel(level) || w <= 0 || h <= 0) return false;
  const Level& lv = *levels_[level];
  // OpenSlide paints at (x / downsample, y / downsample); a fractional offset would be resampled
  // by cairo, which only OpenSlide reproduces.
  const double fx = static_cast<double>(x) / lv.downsample, fy = static_cast<double>(y) / lv.downsample;
  if (fx != std::floor(fx) || fy != std::floor(fy)) return false;
  const int64_t lx = static_cast<int64_t>(fx), ly = static_cast<int64_t>(fy);
  const int64_t x0 = std::max<int64_t>(lx, 0), y0 = std::max<int64_t>(ly, 0);
  const int64_t x1 = std::min<int64_t>(lx + w, lv.imageW), y1 = std::min<int64_t>(ly + h, lv.imageH);
  // Aperio's missing (zero-length) tiles are rendered by OpenSlide from a coarser level.
  if (x1 > x0 && y1 > y0) {
    for (int64_t row = y0 / lv.tileH; row <= (y1 - 1) / lv.tileH; ++row)
      for (int64_t col = x0 / lv.tileW; col <= (x1 - 1) / lv.tileW; ++col)
        if (lv.counts[row * lv.across + col] == 0) return false;
  }
  out.width = w, out.height = h;
  out.pixels.resize(static_cast<size_t>(w) * h * 3);
  if (x0 != lx || y0 != ly || x1 != lx + w || y1 != ly + h) {
    for (size_t i = 0; i < out.pixels.size(); i += 3) std::memcpy(&out.pixels[i], background_.data(), 3);
  }
  if (x1 <= x0 || y1 <= y0) return true;
  for (int64_t row = y0 / lv.tileH; row <= (y1 - 1) / lv.tileH; ++row) {
    for (int64_t col = x0 / lv.tileW; col <= (x1 - 1) / lv.tileW; ++col) {
      const auto t = tile(lv, level, col, row, x, y, w, h);
      // Intersection of the tile (clipped to the image) with the region, in level pixels.
      const int64_t tx0 = std::max(col * lv.tileW, x0), tx1 = std::min((col + 1) * lv.tileW, x1);
      const int64_t ty0 = std::max(row * lv.tileH, y0), ty1 = std::min((row + 1) * lv.tileH, y1);
      const size_t bytes = static_cast<size_t>(tx1 - tx0) * 3;
      for (int64_t yy = ty0; yy < ty1; ++yy) {
        const uint8_t* src = t->rgb.data() +
                             (static_cast<size_t>(yy - row * lv.tileH) * lv.tileW + (tx0 - col * lv.tileW)) * 3;
        std::memcpy(out.at(static_cast<int>(tx0 - lx), static_cast<int>(yy - ly)), src, bytes);
      }
    }
  }
  return true;
}

}  // namespace slidetrain::wsi
