#pragma once
// Command-line front end: `slidetrain <command> [-c config.yaml] [key=value ...]`.
#include <string>
#include <vector>

namespace slidetrain {

/// Runs a command; returns the exit code. Throws on errors (main() prints them).
int runCli(const std::vector<std::string>& args);
std::string usage();
/// What `slidetrain --version` prints: the program's and the libraries' versions, one a line.
std::string versionText();
/// "slidetrain " and the arguments, each quoted for a POSIX shell where it needs it.
std::string commandLineText(const std::vector<std::string>& args);

}  // namespace slidetrain
