// MPI process runtime: init/finalize once, world and node ranks, job abort, and the error/timeout
// helpers of Check.h. Declared in MpiComm.h (public part) and Check.h (internal part).
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>

#include "distributed/Check.h"
#include "distributed/Env.h"
#include "distributed/Heartbeat.h"
#include "distributed/MpiComm.h"
#ifdef SLIDETRAIN_WITH_NCCL
#include "distributed/NcclComm.h"
#endif

namespace slidetrain::dist {
namespace {

struct MpiState {
  int rank = 0, size = 1, localRank = 0, localSize = 1;
  bool threadMultiple = false;
  std::string host;
};

MpiState& state() {
  static MpiState s;
  return s;
}

std::string hostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

void finalizeAtExit() {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (inited && !finalized) {
    detail::stopHeartbeat();  // in step with the other ranks: no beat left unmatched
    MPI_Finalize();
  }
}

std::string commandLine();

void initOnce() {
  MpiState& s = state();
  s.host = hostName();
  int inited = 0;
  MPI_Initialized(&inited);
  int provided = MPI_THREAD_SINGLE;
  if (!inited) {
    // A rank waiting in a collective gives its core to the process's other threads (the patch
    // stream's workers) instead of spinning: OpenMPI polls with sched_yield when idle. Ranks
    // share cores with their readers, and SyncBatchNorm meets the other ranks in every layer;
    // measured on 2 cores, 2 ranks: +10 % patches/s (docs/distributed.md). A user's setting wins.
    setenv("OMPI_MCA_mpi_yield_when_idle", "1", /*overwrite=*/0);
    // MULTIPLE lets MpiComm's communication thread run GradSync's bucket all-reduces while the
    // training thread runs backward and its own collectives (MpiComm.cpp). With a lower level
    // MpiComm falls back to polled MPI_Iallreduce, saying so once.
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
      throw DistError(s.host + ": MPI_Init_thread failed; is the MPI library usable here?");
    std::atexit(finalizeAtExit);
  } else {
    MPI_Query_thread(&provided);
  }
  s.threadMultiple = provided >= MPI_THREAD_MULTIPLE;
  // Errors come back as codes so SLIDETRAIN_MPI_CHECK can name the call (default is abort).
  SLIDETRAIN_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  SLIDETRAIN_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &s.rank));
  SLIDETRAIN_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &s.size));

  const LaunchEnv env = readLaunchEnv();
  // srun without PMI support starts N singleton MPI worlds, and a torchrun habit (WORLD_SIZE=N
  // without an MPI launcher) starts one: every process would think it is rank 0 of 1 and train
  // alone. Stop at once, showing the commands that start the world asked for.
  if (env.source != "none" && env.worldSize != s.size) {
    const std::string cmd = commandLine();
    const std::string n = std::to_string(env.worldSize);
    throw DistError(detail::rankHost() + ": launcher (" + env.source + ") says world size " + n +
                    " but MPI_COMM_WORLD has " + std::to_string(s.size) +
                    " process" + (s.size == 1 ? "" : "es") +
                    (s.size == 1 ? " (this process was not started by an MPI launcher, or srun "
                                   "has no PMI to connect its tasks)" : "") +
                    ". slidetrain starts its ranks with MPI; run\n  mpirun -np " + n + " " + cmd +
                    "\nor, in a SLURM allocation,\n  srun -n " + n + " --mpi=pmix " + cmd +
                    "\n(torchrun's RANK/WORLD_SIZE/LOCAL_RANK are only cross-checked; unset them "
                    "when not using them)");
  }
  if (env.source != "none" && env.rank != s.rank)
    throw DistError(detail::rankHost() + ": launcher (" + env.source + ") says rank " +
                    std::to_string(env.rank) + " but MPI_COMM_WORLD says rank " + std::to_string(s.rank) +
                    "; two processes would train as the same rank. Unset the stale variables");
  // Node-local rank: collective over the world, done here because every process calls
  // ensureMpiInitialized before any other collective (same order on every rank).
  MPI_Comm node;
  SLIDETRAIN_MPI_CHECK(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, s.rank, MPI_INFO_NULL, &node));
  SLIDETRAIN_MPI_CHECK(MPI_Comm_rank(node, &s.localRank));
  SLIDETRAIN_MPI_CHECK(MPI_Comm_size(node, &s.localSize));
  SLIDETRAIN_MPI_CHECK(MPI_Comm_free(&node));
  if (env.localRank >= 0) s.localRank = env.localRank;  // the launcher's word wins (GPU binding)
  if (env.localSize >= 0) s.localSize = env.localSize;
  detail::startHeartbeat();  // collective: right after the node split, on every rank
}

/// This process's command line, arguments quoted where the shell would need it.
std::string commandLine() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string out, arg;
  auto flush = [&] {
    const bool plain = !arg.empty() && arg.find_first_of(" \t'\"$`\\*?;&|<>()") == std::string::npos;
    out += (out.empty() ? "" : " ") + (plain ? arg : "'" + arg + "'");
    arg.clear();
  };
  for (char c : all) {
    if (c == '\0') flush();
    else arg += c;
  }
  if (!arg.empty()) flush();
  return out.empty() ? std::string("slidetrain ...") : out;
}

/// Built when the timeout fires: the heartbeat then knows which peers went silent.
std::string timedOut(const std::string& what, std::chrono::milliseconds timeout) {
  return what + " timed out after " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
         "s (a peer rank is dead or stuck)" + detail::peerReport();
}

/// One thread for all Deadlines: sleeps until the earliest one, ends the job if it passed.
struct Watchdog {
  struct Entry {
    std::chrono::steady_clock::time_point deadline;
    std::string what;
    std::chrono::milliseconds timeout;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, Entry> armed;
  uint64_t next = 0;
  bool started = false;

  /// Arming a deadline does not wake this thread (a wake-up per collective would be a context
  /// switch per SyncBatchNorm layer on a busy core): it looks every kTick, or sooner when a
  /// deadline shorter than that is armed.
  static constexpr std::chrono::milliseconds kTick{100};

  void run() {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      auto until = std::chrono::steady_clock::now() + kTick;
      if (!armed.empty()) {
        auto first = armed.begin();
        for (auto it = armed.begin(); it != armed.end(); ++it)
          if (it->second.deadline < first->second.deadline) first = it;
        if (std::chrono::steady_clock::now() >= first->second.deadline)
          abortJob(timedOut(first->second.what, first->second.timeout));  // never returns
        // A copy: ~Deadline may erase the entry while the lock is released (heap-use-after-free
        // found by AddressSanitizer).
        until = std::min(until, first->second.deadline);
      }
      cv.wait_until(lock, until);
    }
  }
};

Watchdog& watchdog() {
  static Watchdog* w = new Watchdog;  // leaked: the detached thread may outlive static dtors
  return *w;
}

}  // namespace

namespace detail {

Deadline::Deadline(std::string what, std::chrono::milliseconds timeout) {
  Watchdog& w = watchdog();
  std::lock_guard<std::mutex> lock(w.mu);
  if (!w.started) {
    std::thread([&w] { w.run(); }).detach();
    w.started = true;
  }
  id_ = w.next++;
  w.armed[id_] = {std::chrono::steady_clock::now() + timeout, std::move(what), timeout};
  if (timeout < Watchdog::kTick) w.cv.notify_all();  // else the next look comes in time
}

Deadline::~Deadline() {
  Watchdog& w = watchdog();
  std::lock_guard<std::mutex> lock(w.mu);
  w.armed.erase(id_);
}

std::string rankHost() {
  const MpiState& s = state();
  std::string host = s.host.empty() ? hostName() : s.host;
  int inited = 0;
  MPI_Initialized(&inited);
  int rank = inited ? s.rank : 0;
  if (!inited) {
    try {
      rank = readLaunchEnv().rank;
    } catch (...) {
    }
  }
  return "rank " + std::to_string(rank) + "@" + host;
}

void throwCallError(const char* file, int line, const char* call, const std::string& reason) {
  throw DistError(rankHost() + " " + file + ":" + std::to_string(line) + ": " + call +
                  " failed: " + reason);
}

std::string mpiErrorString(int code) {
  char buf[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(buf, len);
}

bool mpiThreadMultiple() { return state().threadMultiple; }

std::mutex& mpiMutex() {
  static std::mutex m;
  return m;
}

void pollWithTimeout(const std::function<bool()>& done, const std::string& what,
                     std::chrono::milliseconds timeout, const std::function<void()>& onTimeout) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (long iter = 0;; ++iter) {
    if (done()) return;
    if (iter < 1000) continue;  // spin: small collectives finish within microseconds
    if ((iter & 63) != 0) {
      std::this_thread::yield();
      continue;
    }
    const auto waited = Clock::now() - start;
    if (waited > timeout) {
      if (onTimeout) onTimeout();
      abortJob(timedOut(what, timeout));
    }
    // Nonblocking MPI collectives progress only inside MPI_Test, so while data may be moving
    // (the first second) poll as fast as a blocking MPI call would; after that we are waiting
    // for a late peer and leave the core to others.
    if (waited > std::chrono::seconds(1))
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    else
      std::this_thread::yield();
  }
}

}  // namespace detail

void ensureMpiInitialized() {
  // A failed start (e.g. the launcher's world differs from MPI's) stays failed: every later
  // call rethrows the same error instead of initialising again.
  static std::once_flag once;
  static std::exception_ptr failed;
  std::call_once(once, [] {
    try {
      initOnce();
    } catch (...) {
      failed = std::current_exception();
    }
  });
  if (failed) std::rethrow_exception(failed);
}

int worldRank() {
  ensureMpiInitialized();
  return state().rank;
}
int worldSize() {
  ensureMpiInitialized();
  return state().size;
}
int localRank() {
  ensureMpiInitialized();
  return state().localRank;
}
int localSize() {
  ensureMpiInitialized();
  return state().localSize;
}

int mpiWorldSizeNoThrow() noexcept {
  int inited = 0, finalized = 0, size = 1;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (inited && !finalized && MPI_Comm_size(MPI_COMM_WORLD, &size) != MPI_SUCCESS) size = 1;
  return size;
}

void abortJob(const std::string& why, int code) {
  std::fprintf(stderr, "%s: %s\n", detail::rankHost().c_str(), why.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (inited && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

std::vector<std::string> libraryVersions() {
  std::vector<std::string> out;
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (MPI_Get_library_version(text, &len) == MPI_SUCCESS) {
    std::string v(text, static_cast<size_t>(len));
    out.push_back(v.substr(0, v.find_first_of("\n,")));
  }
#ifdef SLIDETRAIN_WITH_NCCL
  out.push_back(ncclAndCudaVersions());
#else
  out.push_back("NCCL: not built (SLIDETRAIN_WITH_NCCL=OFF)");
#endif
  return out;
}

}  // namespace slidetrain::dist
