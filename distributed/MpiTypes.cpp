// Tensor <-> MPI buffer helpers of MpiComm: datatypes, ops, staging, counts, completion.
#include "distributed/MpiTypes.h"

#include <climits>

#include "distributed/Check.h"

namespace slidetrain::dist::detail {

MPI_Datatype mpiType(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kInt: return MPI_INT32_T;
    case at::kLong: return MPI_INT64_T;
    case at::kByte: return MPI_UINT8_T;
    case at::kChar: return MPI_INT8_T;
    case at::kShort: return MPI_INT16_T;
    default:
      throw DistError(rankHost() + ": MpiComm does not support dtype " +
                      std::string(c10::toString(t)) +
                      " (float16/bfloat16 travel as float32; use float, double or integers)");
  }
}

MPI_Op mpiOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return MPI_SUM;  // Avg divides once after the sum
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

at::Tensor staging(const at::Tensor& t) {
  at::ScalarType st = t.scalar_type();
  if (st == at::kHalf || st == at::kBFloat16) st = at::kFloat;
  return t.to(at::kCPU, st).contiguous();
}

int checkedCount(const at::Tensor& t) {
  if (t.numel() > INT_MAX)
    throw DistError(rankHost() + ": tensor of " + std::to_string(t.numel()) +
                    " elements exceeds MPI's int count; split it");
  return static_cast<int>(t.numel());
}

std::string describe(const char* name, uint64_t seq, const at::Tensor& t) {
  return std::string(name) + " #" + std::to_string(seq) + " (" + c10::toString(t.scalar_type()) +
         ", " + std::to_string(t.numel()) + " elements)";
}

void finishAllReduce(at::Tensor& t, at::Tensor& buf, ReduceOp op, int n) {
  if (op == ReduceOp::Avg) {
    if (at::isFloatingType(buf.scalar_type()))
      buf.div_(n);
    else
      buf.div_(n, "trunc");
  }
  if (buf.data_ptr() != t.data_ptr()) t.copy_(buf);
}

}  // namespace slidetrain::dist::detail
