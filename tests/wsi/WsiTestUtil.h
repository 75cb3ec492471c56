#pragma once
// Helpers shared by the wsi tests: fixture paths, a self-deleting temp folder, and a way to run
// the system Python (which has openslide-python and Pillow) to produce reference pixels.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace slidetrain::wsi::test {

inline std::string sharedSlide(const std::string& name) {
  return std::string(SLIDETRAIN_SHARED_DATA) + "/slides/" + name;
}

/// A fresh folder under $TMPDIR (or /tmp), removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/wsi_test_XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::vector<uint8_t> readBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void writeText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline const char* kSystemPython = "/usr/bin/python3";

/// Runs `script` with the system Python and `args`; returns the exit status.
inline int runPython(const std::string& script, const std::string& args, const TempDir& dir) {
  const std::string file = dir.file("ref.py");
  writeText(file, script);
  const std::string cmd = std::string(kSystemPython) + " " + file + " " + args;
  return std::system(cmd.c_str());
}

}  // namespace slidetrain::wsi::test
