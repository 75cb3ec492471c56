// Heartbeat: see Heartbeat.h. One thread per process; plain point-to-point messages on a private
// MPI_Comm_dup, so nothing it does can match a collective.
#include "distributed/Heartbeat.h"

#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "distributed/Check.h"
#include "distributed/MpiComm.h"

namespace slidetrain::dist {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPeriod = std::chrono::milliseconds(500);
constexpr auto kSilent = std::chrono::milliseconds(1500);  // three missed beats
constexpr int kTag = 7321;
constexpr int kMaxPendingPerPeer = 8;  // do not queue without bound to a stopped peer

struct Beat {
  int64_t step = -1;
  char host[64] = {0};
  char what[192] = {0};
};

struct PeerState {
  Clock::time_point heard{};
  bool ever = false;
  Beat beat;
};

struct Heart {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
  std::atomic<bool> stop{false};
  std::thread thread;
  std::mutex mu;  // guards `peers`, `what`
  std::vector<PeerState> peers;
  std::string what = "starting";
  std::atomic<int64_t> step{-1};
  Clock::time_point started = Clock::now();
  struct Pending {
    int peer;
    MPI_Request req;
    std::unique_ptr<Beat> buf;
  };
  std::deque<Pending> pending;

  void drain() {
    for (;;) {
      int flag = 0;
      MPI_Status st;
      if (MPI_Iprobe(MPI_ANY_SOURCE, kTag, comm, &flag, &st) != MPI_SUCCESS || !flag) return;
      Beat b;
      if (MPI_Recv(&b, sizeof b, MPI_BYTE, st.MPI_SOURCE, kTag, comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return;
      b.host[sizeof b.host - 1] = b.what[sizeof b.what - 1] = 0;
      std::lock_guard<std::mutex> lock(mu);
      PeerState& p = peers[static_cast<size_t>(st.MPI_SOURCE)];
      p.heard = Clock::now();
      p.ever = true;
      p.beat = b;
    }
  }

  void reap() {
    for (auto it = pending.begin(); it != pending.end();) {
      int done = 0;
      if (MPI_Test(&it->req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || done)
        it = pending.erase(it);
      else
        ++it;
    }
  }

  void send() {
    Beat mine;
    mine.step = step.load();
    std::snprintf(mine.host, sizeof mine.host, "%s", hostName().c_str());
    {
      std::lock_guard<std::mutex> lock(mu);
      std::snprintf(mine.what, sizeof mine.what, "%s", what.c_str());
    }
    for (int r = 0; r < size; ++r) {
      if (r == rank) continue;
      int queued = 0;
      for (const auto& p : pending) queued += p.peer == r;
      if (queued >= kMaxPendingPerPeer) continue;  // that peer is not receiving
      Pending p{r, MPI_REQUEST_NULL, std::make_unique<Beat>(mine)};
      if (MPI_Isend(p.buf.get(), sizeof(Beat), MPI_BYTE, r, kTag, comm, &p.req) == MPI_SUCCESS)
        pending.push_back(std::move(p));
    }
  }

  void run() {
    while (!stop.load()) {
      send();
      const auto until = Clock::now() + kPeriod;
      while (!stop.load() && Clock::now() < until) {
        drain();
        reap();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  static std::string hostName() {
    char buf[64] = {0};
    if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
    return buf;
  }
};

Heart* heart() {
  static Heart* h = new Heart;  // leaked: the thread may outlive static destructors
  return h;
}
std::atomic<bool> running{false};

std::string seconds(Clock::duration d) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f s", std::chrono::duration<double>(d).count());
  return b;
}

}  // namespace

void noteStep(int64_t step) { heart()->step.store(step); }

namespace detail {

void startHeartbeat() {
  Heart* h = heart();
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size < 2 || !mpiThreadMultiple()) return;
  // Collective #1 after the node split in MPI initialisation: same place on every rank.
  if (MPI_Comm_dup(MPI_COMM_WORLD, &h->comm) != MPI_SUCCESS) return;
  MPI_Comm_set_errhandler(h->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(h->comm, &h->rank);
  h->size = size;
  h->peers.assign(static_cast<size_t>(size), PeerState{});
  h->started = Clock::now();
  running = true;
  h->thread = std::thread([h] { h->run(); });
}

void stopHeartbeat() {
  if (!running.exchange(false)) return;
  Heart* h = heart();
  h->stop = true;
  if (h->thread.joinable()) h->thread.join();
  // Leave together: after this barrier no rank sends beats any more; until then keep receiving
  // (a peer's beat must not be left unmatched at MPI_Finalize). A dead peer: give up after 5 s.
  MPI_Request barrier = MPI_REQUEST_NULL;
  if (MPI_Ibarrier(h->comm, &barrier) != MPI_SUCCESS) return;
  const auto until = Clock::now() + std::chrono::seconds(5);
  for (int done = 0; !done && Clock::now() < until;) {
    h->drain();
    h->reap();
    if (MPI_Test(&barrier, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) break;
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  h->drain();
  for (auto& p : h->pending) {  // to peers that stopped receiving: withdraw the beat
    MPI_Cancel(&p.req);
    MPI_Request_free(&p.req);
  }
  h->pending.clear();
}

void noteActivity(const std::string& what) {
  Heart* h = heart();
  if (!running.load()) return;
  std::lock_guard<std::mutex> lock(h->mu);
  h->what = what;
}

}  // namespace detail

void noteWork(const std::string& what) { detail::noteActivity(what); }

std::string peerActivity() {
  if (!running.load()) return "";
  Heart* h = heart();
  std::lock_guard<std::mutex> lock(h->mu);
  std::string out;
  for (int r = 0; r < h->size; ++r) {
    if (r == h->rank) continue;
    const PeerState& p = h->peers[static_cast<size_t>(r)];
    out += (out.empty() ? "" : ", ") + std::string("rank ") + std::to_string(r) + "@" +
           (p.ever ? p.beat.host : "?") + ": " + (p.ever ? std::string(p.beat.what) : "not heard from yet");
  }
  return out;
}

namespace detail {

std::string peerReport() {
  if (!running.load()) return "";
  Heart* h = heart();
  const auto now = Clock::now();
  std::lock_guard<std::mutex> lock(h->mu);
  std::string silent, all;
  for (int r = 0; r < h->size; ++r) {
    if (r == h->rank) continue;
    const PeerState& p = h->peers[static_cast<size_t>(r)];
    const auto since = p.ever ? now - p.heard : now - h->started;
    std::string desc = "rank " + std::to_string(r) + "@" + (p.ever ? p.beat.host : "?") + " (last: " +
                       (p.ever ? std::string(p.beat.what) : std::string("never heard from")) +
                       (p.ever && p.beat.step >= 0 ? ", step " + std::to_string(p.beat.step) : "") +
                       ", " + seconds(since) + " ago)";
    if (since > kSilent) silent += (silent.empty() ? "" : ", ") + desc;
    else if (r < 9) all += (all.empty() ? "" : ", ") + desc;
  }
  if (!silent.empty()) return "; not heard from for over " + seconds(kSilent) + ": " + silent;
  return "; every rank still answers (do they disagree on the order of collectives?): " + all;
}

}  // namespace detail
}  // namespace slidetrain::dist
