#pragma once
// Error and timeout helpers shared by the communicators: every failure message starts with
// "rank R@host" and the file:line of the call, and names the call, so a log line from a 64-rank
// job says who failed where. Internal to distributed/ (not included by users).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>

#include "distributed/Comm.h"

namespace slidetrain::dist::detail {

/// "rank 3@node07" (the MPI world rank once MPI is initialised, else the launcher's rank).
std::string rankHost();
/// Formats and throws DistError("rank R@host file:line: call failed: reason").
[[noreturn]] void throwCallError(const char* file, int line, const char* call,
                                 const std::string& reason);
/// Text of an MPI error code (MPI_Error_string).
std::string mpiErrorString(int code);
/// True when MPI gave MPI_THREAD_MULTIPLE; otherwise callers serialise MPI calls with mpiMutex()
/// and MpiComm has no communication thread (allReduceAsync falls back to polled MPI_Iallreduce).
bool mpiThreadMultiple();
std::mutex& mpiMutex();

/// Polls `done` until it returns true. After `timeout` it calls `onTimeout` (e.g. ncclCommAbort)
/// and ends the whole job with "rank R@host: <what> timed out after Ns (a peer rank is dead or
/// stuck)" - a stuck collective must never hang a job silently. Spins briefly first (latency of
/// small collectives), then yields and sleeps so a waiting rank leaves the core to others.
void pollWithTimeout(const std::function<bool()>& done, const std::string& what,
                     std::chrono::milliseconds timeout,
                     const std::function<void()>& onTimeout = nullptr);

/// Timeout for a blocking call (a blocking MPI collective keeps MPI's tuned algorithms, which
/// move large buffers about twice as fast as the nonblocking ones): if this scope is not left
/// within `timeout`, a watchdog thread ends the job with the same message as pollWithTimeout.
class Deadline {
 public:
  Deadline(std::string what, std::chrono::milliseconds timeout);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

 private:
  uint64_t id_;
};

}  // namespace slidetrain::dist::detail

/// Runs an MPI call and throws DistError naming rank, host, file:line, the call text and
/// MPI_Error_string when it does not return MPI_SUCCESS (communicators use MPI_ERRORS_RETURN).
#define SLIDETRAIN_MPI_CHECK(call)                                                         \
  do {                                                                                     \
    int slidetrainMpiRc_ = (call);                                                         \
    if (slidetrainMpiRc_ != 0 /* MPI_SUCCESS */)                                           \
      ::slidetrain::dist::detail::throwCallError(                                          \
          __FILE__, __LINE__, #call, ::slidetrain::dist::detail::mpiErrorString(slidetrainMpiRc_)); \
  } while (0)

/// Non-throwing variant for destructors: prints the same message to stderr.
#define SLIDETRAIN_MPI_CHECK_NOTHROW(call)                                                 \
  do {                                                                                     \
    int slidetrainMpiRc_ = (call);                                                         \
    if (slidetrainMpiRc_ != 0)                                                             \
      std::fprintf(stderr, "%s %s:%d: %s failed: %s\n",                                    \
                   ::slidetrain::dist::detail::rankHost().c_str(), __FILE__, __LINE__,     \
                   #call, ::slidetrain::dist::detail::mpiErrorString(slidetrainMpiRc_).c_str()); \
  } while (0)
