#pragma once
// How a tensor goes through an MPI collective: its MPI datatype and op, the contiguous CPU
// buffer MPI works on, the int element count MPI takes, the collective's name in messages, and
// the completion step (Avg division, copy back). Internal to MpiComm and its communication
// thread (not included by users).
#include <mpi.h>

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "distributed/Comm.h"

namespace slidetrain::dist::detail {

/// MPI datatype of `t`; DistError for dtypes MpiComm does not carry (half types are staged).
MPI_Datatype mpiType(at::ScalarType t);
/// MPI_SUM for Sum and Avg (Avg divides once after the sum), MPI_MAX, MPI_MIN.
MPI_Op mpiOp(ReduceOp op);
/// The buffer MPI works on: `t` itself when it is a contiguous CPU tensor of an MPI type, else a
/// contiguous CPU copy (float32 for half types) that is copied back on completion.
at::Tensor staging(const at::Tensor& t);
/// t.numel() as MPI's int count; DistError when it does not fit.
int checkedCount(const at::Tensor& t);
/// "allReduce #7 (float, 1024 elements)" for activity notes and timeout messages.
std::string describe(const char* name, uint64_t seq, const at::Tensor& t);
/// Divides by the world size for Avg (one pass over the flat buffer) and copies the staged
/// buffer back into the caller's tensor.
void finishAllReduce(at::Tensor& t, at::Tensor& buf, ReduceOp op, int n);

}  // namespace slidetrain::dist::detail
