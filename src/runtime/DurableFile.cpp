#include "src/runtime/DurableFile.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace fs = std::filesystem;

namespace slidetrain {

namespace {

void syncPath(const std::string& path, bool folder) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (folder ? O_DIRECTORY : 0));
  if (fd < 0) throw std::runtime_error(path + ": cannot open to sync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some filesystems cannot sync a folder (EINVAL); the file itself is on disk by then.
  if (rc != 0 && !(folder && (err == EINVAL || err == EROFS)))
    throw std::runtime_error(path + ": fsync failed: " + std::strerror(err));
}

}  // namespace

void commitFile(const std::string& tmp, const std::string& path) {
  syncPath(tmp, false);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw std::runtime_error(path + ": cannot rename " + tmp + " to it: " + ec.message());
  const fs::path parent = fs::path(path).parent_path();
  syncPath(parent.empty() ? std::string(".") : parent.string(), true);
}

void writeFileDurably(const std::string& path, const std::function<void(const std::string&)>& write) {
  const fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  const std::string tmp = path + ".tmp";
  write(tmp);
  commitFile(tmp, path);  // readers see the old or the new file, never half of one
}

}  // namespace slidetrain
