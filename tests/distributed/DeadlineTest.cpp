// detail::Deadline: the watchdog behind blocking collectives' timeouts.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "distributed/Check.h"

using namespace std::chrono_literals;
using slidetrain::dist::detail::Deadline;

// The watchdog thread sleeps until the earliest armed deadline. A Deadline disarmed while the
// watchdog sleeps on it, then a new one armed (which wakes the watchdog), once made the watchdog
// read the erased entry's time: a heap-use-after-free that AddressSanitizer reports
// (launch/sanitize.sh); without the sanitizer the test only shows that neither ends the process.
TEST(Deadline, DisarmedWhileTheWatchdogSleepsOnIt) {
  for (int i = 0; i < 10; ++i) {
    auto first = std::make_unique<Deadline>("first", 60s);
    std::this_thread::sleep_for(20ms);  // the watchdog now sleeps until first's deadline
    first.reset();
    Deadline second("second", 60s);  // wakes the watchdog
    std::this_thread::sleep_for(20ms);
  }
  SUCCEED();
}
