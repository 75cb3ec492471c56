// JpegWriter: see JpegWriter.h. libjpeg reports errors through error_exit, which must not
// return: it longjmps back to encodeJpeg, where the error becomes a DataError (as in
// TiffTileReader's decoder). Between setjmp and longjmp only plain C data is touched.
#include "wsi/JpegWriter.h"

#include <csetjmp>
#include <cstdio>
#include <cstdlib>

#include <jpeglib.h>

#include "wsi/Errors.h"

namespace slidetrain::wsi {
namespace {

struct JpegError {
  jpeg_error_mgr base;
  std::jmp_buf env;
  char message[JMSG_LENGTH_MAX];
};

extern "C" void jpegWriteErrorExit(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->env, 1);
}
extern "C" void jpegWriteOutputMessage(j_common_ptr) {}

/// Plain C: returns false with `err->message` set on failure; `*out` (malloc'ed by libjpeg) is
/// freed by the caller either way.
bool encode(const RgbImage& img, int quality, unsigned char** out, unsigned long* size, JpegError* err) {
  jpeg_compress_struct cinfo;
  cinfo.err = jpeg_std_error(&err->base);
  err->base.error_exit = jpegWriteErrorExit;
  err->base.output_message = jpegWriteOutputMessage;
  jpeg_create_compress(&cinfo);
  if (setjmp(err->env)) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_mem_dest(&cinfo, out, size);
  cinfo.image_width = static_cast<JDIMENSION>(img.width);
  cinfo.image_height = static_cast<JDIMENSION>(img.height);
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(img.at(0, static_cast<int>(cinfo.next_scanline)));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

}  // namespace

std::string encodeJpeg(const RgbImage& img, int quality) {
  if (img.width <= 0 || img.height <= 0 ||
      img.pixels.size() != static_cast<size_t>(img.width) * static_cast<size_t>(img.height) * 3)
    throw DataError("cannot encode a JPEG: not a " + std::to_string(img.width) + "x" +
                    std::to_string(img.height) + " RGB image");
  if (quality < 1 || quality > 100) throw DataError("cannot encode a JPEG: quality " + std::to_string(quality) + " is not in 1..100");
  unsigned char* out = nullptr;
  unsigned long size = 0;
  JpegError err{};
  const bool ok = encode(img, quality, &out, &size, &err);
  std::string bytes = ok ? std::string(reinterpret_cast<const char*>(out), size) : std::string();
  std::free(out);
  if (!ok) throw DataError(std::string("cannot encode a JPEG: ") + err.message);
  return bytes;
}

}  // namespace slidetrain::wsi
