#include "src/runtime/Preemption.h"

#include <atomic>
#include <csignal>
#include <cstring>

#include <ATen/ATen.h>

#include "distributed/Comm.h"

namespace slidetrain {
namespace {

std::atomic<int> received{0};  // lock-free int: async-signal-safe to store
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void onPreemptSignal(int sig) {
  int expected = 0;
  if (!received.compare_exchange_strong(expected, sig) && sig == SIGTERM && expected == SIGTERM) {
    // Second SIGTERM: the user insists; die as the default action would. A SIGTERM after a
    // SIGUSR1 (SLURM's time-limit warning, then the limit itself) lets the checkpoint finish.
    std::signal(SIGTERM, SIG_DFL);
    std::raise(SIGTERM);
  }
}

}  // namespace

void installPreemptionHandlers() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = onPreemptSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and waits carry on; the loop polls the flag
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

int agreePreemption(dist::Comm& host, int* fromRank) {
  const int sig = received.load();
  if (host.size() <= 1) {
    if (fromRank) *fromRank = sig ? 0 : -1;
    return sig;
  }
  // [signal, -(rank that has one)] maxed: any signal wins, and the lowest such rank is named.
  at::Tensor t = at::tensor({static_cast<double>(sig), sig ? -static_cast<double>(host.rank()) : -1e9},
                            at::kDouble);
  host.allReduce(t, dist::ReduceOp::Max);
  const double* p = t.data_ptr<double>();
  if (fromRank) *fromRank = p[0] > 0 ? static_cast<int>(-p[1]) : -1;
  return static_cast<int>(p[0]);
}

std::string signalName(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGINT: return "SIGINT";
    default: return "signal " + std::to_string(sig);
  }
}

}  // namespace slidetrain
