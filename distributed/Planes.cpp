// makePlanes: see Planes.h.
#include "distributed/Planes.h"

#include <cstdio>
#include <mutex>

#include <c10/core/impl/DeviceGuardImplInterface.h>

#include "distributed/Check.h"
#include "distributed/MpiComm.h"
#include "distributed/StrictComm.h"
#ifdef SLIDETRAIN_WITH_NCCL
#include "distributed/NcclComm.h"
#endif

namespace slidetrain::dist {

Planes makePlanes(const std::string& backend, const c10::Device& device, CommOptions options) {
  if (backend != "auto" && backend != "mpi" && backend != "nccl" && backend != "strict")
    throw DistError("unknown communicator backend \"" + backend +
                    "\"; expected \"auto\", \"mpi\", \"nccl\" or \"strict\"");
  // libtorch's current CUDA device is the model's, whichever plane carries its tensors (the
  // CUDA calls of NcclComm put back the device they find).
  // (Without a usable GPU the communicators below say so themselves.)
  if (device.is_cuda() && device.has_index() && c10::impl::hasDeviceGuardImpl(c10::DeviceType::CUDA)) {
    const auto* cuda = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
    if (device.index() < cuda->deviceCount()) cuda->setDevice(device);
  }
  // Collective #1 (every rank): MpiComm's MPI_Comm_dup. NcclComm's construction is #2.
  auto host = std::make_shared<MpiComm>(options);
  if (backend == "strict") return {host, std::make_shared<StrictComm>(host, device), device};
  if (!device.is_cuda()) {
    if (backend == "nccl")
      throw DistError(detail::rankHost() + ": backend \"nccl\" reduces CUDA tensors but the model "
                      "is on the " + device.str() + ". HINT: use backend auto or mpi on CPU nodes");
    return {host, host, device};
  }
  if (backend == "mpi") return {host, host, device};  // CUDA tensors staged through the host
#ifdef SLIDETRAIN_WITH_NCCL
  return {host, std::make_shared<NcclComm>(options, device.index()), device};
#else
  if (backend == "nccl")
    throw DistError("backend \"nccl\" was asked for but this slidetrain was built without NCCL. "
                    "HINT: install CUDA and NCCL (or pass -DSLIDETRAIN_CUDA_ROOT=...) and rebuild "
                    "with -DSLIDETRAIN_WITH_NCCL=ON, or use backend mpi");
  static std::once_flag warned;
  std::call_once(warned, [] {
    std::fprintf(stderr, "%s: the model is on CUDA but this slidetrain has no NCCL: gradients "
                 "travel through MPI and host memory (slow)\n", detail::rankHost().c_str());
  });
  return {host, host, device};
#endif
}

}  // namespace slidetrain::dist
