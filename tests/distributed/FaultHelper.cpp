// Helper for the fault tests (not a gtest): rank 1 misbehaves while the others enter a
// collective with a 2 s timeout. The CTest script expects a non-zero exit within seconds and a
// message naming a rank.
//   stuck:    rank 1 sleeps past the timeout -> the others print "rank R@host: allReduce #0 ...
//             timed out after 2s (a peer rank is dead or stuck)" and MPI_Abort the job.
//   dead:     rank 1 exits without MPI_Finalize -> mpirun (or our timeout, whichever is first)
//             ends the job, naming rank 1.
//   stopped:  3 ranks; rank 2 stops itself (SIGSTOP, as a swapped-out or frozen node) after one
//             all-reduce and a step -> ranks 0 and 1 time out in the next and name rank 2, its
//             host and its last collective and step (the heartbeat, distributed/Heartbeat.h).
//   gradsync: every rank builds a GradSync; rank 1 then sleeps instead of running backward, so
//             rank 0's bucket all-reduce times out on MpiComm's communication thread ->
//             "rank 0@host: allReduce #N (...) on the communication thread timed out after 2s".
#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>
#include <unistd.h>

#include <csignal>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "distributed/GradSync.h"
#include "distributed/Heartbeat.h"
#include "distributed/MpiComm.h"

using namespace slidetrain::dist;

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "stuck";
  auto comm = makeComm("mpi", CommOptions{std::chrono::seconds(2)});
  if (mode == "gradsync") {
    torch::nn::Linear net(8, 4);
    GradSync sync(comm, *net);  // collective: same order on every rank
    if (comm->rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(30));
    net->forward(at::ones({2, 8})).sum().backward();  // launches the bucket from the hook
    sync.finalize();
    std::printf("rank %d: finalize returned, which it must not\n", comm->rank());
    return 0;
  }
  at::Tensor t = at::ones({16});
  if (mode == "stopped") {
    comm->allReduce(t);
    noteStep(41);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));  // one beat with the step
    if (comm->rank() == 2) raise(SIGSTOP);
    comm->allReduce(t);
    std::printf("rank %d: all-reduce returned, which it must not\n", comm->rank());
    return 0;
  }
  if (comm->rank() == 1) {
    if (mode == "dead") {
      auto w = comm->allReduceAsync(t);  // dies with its part of the collective in flight
      _exit(3);
    }
    std::this_thread::sleep_for(std::chrono::seconds(30));
  }
  comm->allReduce(t);
  std::printf("rank %d: all-reduce returned, which it must not\n", comm->rank());
  return 0;
}
