#pragma once
// Command-line front end: `slidetrain <command> [-c config.yaml] [key=value ...]`.
#include <string>
#include <vector>

namespace slidetrain {

/// Runs a command; returns the exit code. Throws on errors (main() prints them).
int runCli(const std::vector<std::string>& args);
std::string usage();

}  // namespace slidetrain
