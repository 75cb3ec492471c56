#pragma once
// The CUDA and NCCL side of NcclComm: error-checking macros that name rank, host, file:line and
// the NCCL version; tensor dtype/op -> NCCL; the compute stream collectives order against; and
// CUDA buffers that also work with a CPU-only libtorch. Also defined in NcclCuda.cpp: the public
// helpers of NcclComm.h (cudaDeviceCountOrZero, ncclAndCudaVersions, copyToCudaDevice,
// copyToHost). Internal to NcclComm; built only when SLIDETRAIN_WITH_NCCL.
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include <ATen/ATen.h>

#include "distributed/Check.h"
#include "distributed/Comm.h"

/// Throws DistError "rank R@host file:line: call failed: <ncclGetErrorString> (NCCL x.y.z)".
#define SLIDETRAIN_NCCL_CHECK(call)                                                        \
  do {                                                                                     \
    ncclResult_t slidetrainNcclRc_ = (call);                                               \
    if (slidetrainNcclRc_ != ncclSuccess)                                                  \
      ::slidetrain::dist::detail::throwCallError(                                          \
          __FILE__, __LINE__, #call,                                                       \
          std::string(ncclGetErrorString(slidetrainNcclRc_)) + " (" +                      \
              ::slidetrain::dist::detail::ncclVersionText() + ")");                        \
  } while (0)

#define SLIDETRAIN_CUDA_CHECK(call)                                                        \
  do {                                                                                     \
    cudaError_t slidetrainCudaRc_ = (call);                                                \
    if (slidetrainCudaRc_ != cudaSuccess)                                                  \
      ::slidetrain::dist::detail::throwCallError(__FILE__, __LINE__, #call,                \
                                                 cudaGetErrorString(slidetrainCudaRc_));   \
  } while (0)

namespace slidetrain::dist::detail {

/// "NCCL 2.22.3": the runtime library's version (it can differ from nccl.h's).
std::string ncclVersionText();
/// NCCL datatype of `t`; DistError for dtypes NcclComm does not carry.
ncclDataType_t ncclType(at::ScalarType t);
/// NCCL reduction; Avg is ncclAvg (NCCL >= 2.10) and only for floating tensors, else DistError.
ncclRedOp_t ncclOp(ReduceOp op, at::ScalarType t);
/// DistError naming NcclComm::`what` unless `t` is a contiguous CUDA tensor.
void checkCuda(const at::Tensor& t, const char* what);
/// The stream this thread computes on: libtorch's current CUDA stream of `device` in a CUDA
/// libtorch (what ProcessGroupNCCL orders against) - the legacy default stream, where libtorch's
/// kernels run, unless the caller set another - else the per-thread default stream (a CPU
/// libtorch has no CUDA streams; its only CUDA buffers are the raw ones of copyToCudaDevice).
cudaStream_t computeStream(int device);
/// Makes `device` the calling thread's CUDA device for the scope and restores the one it had
/// after, so that the current device libtorch reads (cudaGetDevice) is left as the caller set it.
class CudaDeviceScope {
 public:
  explicit CudaDeviceScope(int device);
  ~CudaDeviceScope();
  CudaDeviceScope(const CudaDeviceScope&) = delete;
  CudaDeviceScope& operator=(const CudaDeviceScope&) = delete;

 private:
  int previous_ = -1;
};

/// A CUDA tensor of `shape`: libtorch's caching allocator in a CUDA libtorch, else cudaMalloc
/// with a cudaFree deleter (cudaFree synchronises the device, so freeing it is always safe).
at::Tensor emptyCuda(at::IntArrayRef shape, const at::TensorOptions& options, int device);

}  // namespace slidetrain::dist::detail
