#pragma once
// Heartbeat: how a timed-out rank names the rank that is stuck (NCCL's flight recorder and
// Horovod's stall inspector do the same job). Every process of a multi-rank job runs one thread
// that, every 500 ms, sends its state - host, the collective it is in or last issued (with the
// communicator's sequence number), the training step - to every other rank on a private
// communicator, and records what it hears. When a collective times out, the message lists the
// ranks not heard from lately (a stopped, swapped-out or hung process) with their host and last
// state; when every rank still answers, it lists each rank's last collective instead (ranks that
// disagree on the order of collectives). Needs MPI_THREAD_MULTIPLE; without it there is none.
#include <cstdint>
#include <string>

namespace slidetrain::dist {

/// The training step this rank has reached (reported by the heartbeat; the trainer calls it).
void noteStep(int64_t step);
/// What this rank is doing, for the other ranks' reports (e.g. "tiling 3/12 slides"); the next
/// collective replaces it.
void noteWork(const std::string& what);
/// "rank 1@node07: tiling 3/12 slides, rank 2@node08: waitForAll #4" as last heard from the
/// other ranks ("" without a heartbeat).
std::string peerActivity();

namespace detail {

/// Starts the heartbeat (collective over MPI_COMM_WORLD: MPI initialisation calls it on every
/// rank, in the same place). Nothing for a world of one.
void startHeartbeat();
/// Stops it in step with the other ranks (at exit, before MPI_Finalize; bounded wait).
void stopHeartbeat();
/// What this rank is doing now, e.g. "allReduce #12 (mpi, Float, 16 elements)".
void noteActivity(const std::string& what);
/// For a timeout message: "; not heard from for over 1.5 s: rank 2@node07 (last: allReduce #57
/// (mpi, ...), step 12, 2.3 s ago)", or each rank's last collective when all still answer.
/// Empty without a heartbeat.
std::string peerReport();

}  // namespace detail
}  // namespace slidetrain::dist
