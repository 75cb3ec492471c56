#pragma once
// Preemption: SIGTERM or SIGUSR1 (SLURM --signal=USR1@120, scancel, a preempting job) asks the
// run to stop at the next optimizer step that every rank reaches. The ranks agree on it with one
// host-plane all-reduce per step (a signal that reached only one rank stops all of them at the
// same step), rank 0 writes checkpoints/last.pt at that step, and the program exits with
// kExitPreempted, which launch/slurm.sbatch turns into `scontrol requeue`; train.resume: auto
// continues from there, bit-identical to a run that was never interrupted. A second SIGTERM
// while the first is being honoured ends the process at once (the default action); a SIGTERM
// after a SIGUSR1 does not (SLURM: the time-limit warning, then the limit itself).
#include <string>

namespace slidetrain {
namespace dist {
class Comm;
}

/// Exit status of a run that stopped on a preemption signal after writing its checkpoint (75,
/// EX_TEMPFAIL in sysexits.h: "try again later").
constexpr int kExitPreempted = 75;

/// Installs the SIGTERM and SIGUSR1 handlers (idempotent; the trainer calls it).
void installPreemptionHandlers();
/// Collective over `host` (every rank, at the same step): the signal when any rank received one,
/// else 0; `fromRank` gets the lowest rank that did. Without other ranks, no communication.
int agreePreemption(dist::Comm& host, int* fromRank = nullptr);
/// "SIGTERM", "SIGUSR1", ...
std::string signalName(int sig);

}  // namespace slidetrain
