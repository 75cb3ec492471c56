#pragma once
// Durable file writes: a reader sees the old file or the new one, never half of one, and the new
// one survives a crash once the call returns (checkpoints, exported weights).
#include <functional>
#include <string>

namespace slidetrain {

/// Makes `tmp` durable and puts it in place of `path`: fsync(tmp), rename, fsync of the folder
/// (a filesystem that cannot sync folders is tolerated). Throws naming the file.
void commitFile(const std::string& tmp, const std::string& path);

/// Creates the parent folders, lets `write` fill `<path>.tmp`, then commitFile()s it.
void writeFileDurably(const std::string& path, const std::function<void(const std::string&)>& write);

}  // namespace slidetrain
