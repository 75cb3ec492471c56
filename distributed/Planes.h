#pragma once
// Two communication planes (docs/distributed.md):
//  * host plane: MPI over CPU tensors - counts, metrics, shape signatures, barriers, config and
//    checkpoint broadcasts, anything the host computes;
//  * device plane: the model's device - gradients, parameters and buffers, BatchNorm statistics,
//    predictions, the loss scaler's inf flag. NCCL when the model is on CUDA, MPI when it is on
//    the CPU (then it is the host plane's communicator itself).
// A tensor never goes to the plane of another device: NCCL fails on host memory, and the
// "strict" backend (StrictComm) makes the same mistake fail on a CPU machine.
#include <memory>
#include <string>

#include <c10/core/Device.h>

#include "distributed/Comm.h"

namespace slidetrain::dist {

struct Planes {
  std::shared_ptr<Comm> host;
  std::shared_ptr<Comm> device;
  /// Where the model and every device-plane tensor live.
  c10::Device modelDevice{c10::kCPU};

  Planes() = default;
  Planes(std::shared_ptr<Comm> hostPlane, std::shared_ptr<Comm> devicePlane, c10::Device on)
      : host(std::move(hostPlane)), device(std::move(devicePlane)), modelDevice(on) {}
  /// One communicator for both planes and a CPU model (CPU worlds, one-process tests).
  template <typename C>
  Planes(std::shared_ptr<C> both)  // NOLINT(google-explicit-constructor)
      : host(both), device(std::move(both)) {}

  int rank() const { return host->rank(); }
  int size() const { return host->size(); }
};

/// The planes for a model on `device` (train.backend): the host plane is always MPI; the device
/// plane is
///   "auto":   NCCL for a CUDA model when NCCL is built, else MPI (the host plane itself);
///   "nccl":   NCCL (DistError unless the model is on CUDA and NCCL is built);
///   "mpi":    MPI (CUDA tensors are staged through host memory: slow, but works anywhere);
///   "strict": StrictComm over MPI, which refuses tensors not declared as device data (tests).
/// For a CUDA `device`, every backend makes it libtorch's current device. Collective over
/// MPI_COMM_WORLD: call in the same order on every rank.
Planes makePlanes(const std::string& backend, const c10::Device& device, CommOptions options = {});

}  // namespace slidetrain::dist
