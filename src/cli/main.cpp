// slidetrain executable: a thin shell over slidetrain_core's CLI. Errors become one line on
// stderr and a non-zero exit; in a multi-rank job the whole job is ended so no rank hangs.
#include <cstdio>
#include <string>
#include <vector>

#include "distributed/MpiComm.h"
#include "src/cli/Cli.h"
#include "src/config/Errors.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return slidetrain::runCli(args);
  } catch (const slidetrain::UsageError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    // Without rethrowing a failed start (the error being reported may be that one).
    if (slidetrain::dist::mpiWorldSizeNoThrow() > 1)
      slidetrain::dist::abortJob(std::string("error: ") + e.what(), 1);
    std::fprintf(stderr, "slidetrain: error: %s\n", e.what());
    return 1;
  }
}
