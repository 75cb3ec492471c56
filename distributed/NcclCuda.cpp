// NcclComm's CUDA/NCCL helpers and the public CUDA helpers of NcclComm.h.
#include "distributed/NcclCuda.h"

#ifdef SLIDETRAIN_TORCH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

#include "distributed/NcclComm.h"

namespace slidetrain::dist {
namespace detail {

std::string ncclVersionText() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "NCCL ?";
  // Since 2.9 the code is major*10000 + minor*100 + patch; before, major*1000 + minor*100 +
  // patch (nccl.h's NCCL_VERSION macro). Runtime and header versions can differ.
  if (v < 10000)
    return "NCCL " + std::to_string(v / 1000) + "." + std::to_string(v / 100 % 10) + "." +
           std::to_string(v % 100);
  return "NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
         std::to_string(v % 100);
}

ncclDataType_t ncclType(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
    case at::kBFloat16: return ncclBfloat16;  // NCCL >= 2.10
#endif
    case at::kInt: return ncclInt32;
    case at::kLong: return ncclInt64;
    case at::kByte: return ncclUint8;
    case at::kChar: return ncclInt8;
    default:
      throw DistError(rankHost() + ": NcclComm does not support dtype " +
                      std::string(c10::toString(t)));
  }
}

ncclRedOp_t ncclOp(ReduceOp op, at::ScalarType t) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
    case ReduceOp::Avg:
      if (!at::isFloatingType(t))
        throw DistError(rankHost() +
                        ": NcclComm Avg is for floating tensors; reduce integers with Sum");
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
      return ncclAvg;  // fused: NCCL divides while reducing (ncclAvg exists since NCCL 2.10)
#else
      throw DistError(rankHost() + ": NcclComm Avg needs NCCL >= 2.10 (ncclAvg); this "
                      "build has " + std::to_string(NCCL_VERSION_CODE) + ". Reduce with Sum and "
                      "divide, or upgrade NCCL");
#endif
  }
  return ncclSum;
}

void checkCuda(const at::Tensor& t, const char* what) {
  if (!t.is_cuda())
    throw DistError(rankHost() + ": NcclComm::" + what +
                    " needs a CUDA tensor; host data (counts, metrics) belongs on the host plane "
                    "(MPI), CPU models use backend \"mpi\"");
  if (!t.is_contiguous())
    throw DistError(rankHost() + ": NcclComm::" + what + " needs a contiguous tensor");
}

CudaDeviceScope::CudaDeviceScope(int device) {
  SLIDETRAIN_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) SLIDETRAIN_CUDA_CHECK(cudaSetDevice(device));
}

CudaDeviceScope::~CudaDeviceScope() {
  int now = -1;
  if (previous_ >= 0 && cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
}

cudaStream_t computeStream(int device) {
#ifdef SLIDETRAIN_TORCH_CUDA
  return c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
#else
  (void)device;
  return cudaStreamPerThread;
#endif
}

at::Tensor emptyCuda(at::IntArrayRef shape, const at::TensorOptions& options, int device) {
#ifdef SLIDETRAIN_TORCH_CUDA
  return at::empty(shape, options.device(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device))));
#else
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  void* p = nullptr;
  const CudaDeviceScope onDevice(device);
  SLIDETRAIN_CUDA_CHECK(cudaMalloc(&p, static_cast<size_t>(n) * options.dtype().itemsize() + 1));
  return at::for_blob(p, shape)
      .options(options)
      .target_device(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device)))
      .deleter([](void* q) { cudaFree(q); })
      .make_tensor();
#endif
}

}  // namespace detail

std::string ncclAndCudaVersions() {
  int rt = 0;
  std::string cuda = cudaRuntimeGetVersion(&rt) == cudaSuccess
                         ? std::to_string(rt / 1000) + "." + std::to_string(rt % 1000 / 10)
                         : std::string("?");
  return detail::ncclVersionText() + ", CUDA runtime " + cuda;
}

int cudaDeviceCountOrZero(std::string* why) {
  int n = 0;
  const cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    if (why) *why = cudaGetErrorString(rc);
    cudaGetLastError();  // clear the sticky error so later CUDA calls are not poisoned
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device visible";
  return n;
}

at::Tensor copyToCudaDevice(const at::Tensor& cpu, int device) {
  const at::Tensor src = cpu.contiguous();
  at::Tensor t = detail::emptyCuda(src.sizes(), src.options(), device);
  const cudaStream_t s = detail::computeStream(device);
  SLIDETRAIN_CUDA_CHECK(cudaMemcpyAsync(t.data_ptr(), src.data_ptr(), src.nbytes(),
                                        cudaMemcpyHostToDevice, s));
  SLIDETRAIN_CUDA_CHECK(cudaStreamSynchronize(s));  // `src` may be pageable and go away
  return t;
}

at::Tensor copyToHost(const at::Tensor& cuda) {
  at::Tensor out = at::empty(cuda.sizes(), cuda.options().device(at::kCPU));
  const int device = cuda.device().index();
  const detail::CudaDeviceScope onDevice(device);
  const cudaStream_t s = detail::computeStream(device);  // ordered after waited collectives
  SLIDETRAIN_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), cuda.data_ptr(), out.nbytes(),
                                        cudaMemcpyDeviceToHost, s));
  SLIDETRAIN_CUDA_CHECK(cudaStreamSynchronize(s));
  return out;
}

}  // namespace slidetrain::dist
