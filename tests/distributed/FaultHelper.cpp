// Helper for the fault tests (not a gtest): rank 1 misbehaves while the others enter an
// all-reduce with a 2 s timeout. The CTest script expects a non-zero exit within seconds and a
// message naming a rank.
//   stuck: rank 1 sleeps past the timeout -> the others print "rank R@host: allReduce #0 ...
//          timed out after 2s (a peer rank is dead or stuck)" and MPI_Abort the job.
//   dead:  rank 1 exits without MPI_Finalize -> mpirun (or our timeout, whichever is first)
//          ends the job, naming rank 1.
#include <ATen/ATen.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "distributed/MpiComm.h"

using namespace slidetrain::dist;

int main(int argc, char** argv) {
  const bool dead = argc > 1 && std::strcmp(argv[1], "dead") == 0;
  auto comm = makeComm("mpi", CommOptions{std::chrono::seconds(2)});
  at::Tensor t = at::ones({16});
  if (comm->rank() == 1) {
    if (dead) {
      auto w = comm->allReduceAsync(t);  // dies with its part of the collective in flight
      _exit(3);
    }
    std::this_thread::sleep_for(std::chrono::seconds(30));
  }
  comm->allReduce(t);
  std::printf("rank %d: all-reduce returned, which it must not\n", comm->rank());
  return 0;
}
