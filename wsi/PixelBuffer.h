#pragma once
// PixelBuffer: the pixel memory of a stream batch. The stream's owner may supply the allocator:
// src/ hands in pinned (page-locked) host memory so that a batch reaches the GPU by an
// asynchronous copy, while wsi/ itself knows nothing of torch or CUDA. Default: the heap, zeroed.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace slidetrain::wsi {

/// Memory from a PixelAllocator: `data` stays valid while `owner` lives.
struct PixelMemory {
  uint8_t* data = nullptr;
  std::shared_ptr<void> owner;
};
/// Returns at least `bytes` bytes; called from the stream's admitting thread.
using PixelAllocator = std::function<PixelMemory(size_t bytes)>;

class PixelBuffer {
 public:
  /// Fresh memory of `n` bytes from `alloc` (the heap when empty); the old memory is released.
  void allocate(size_t n, const PixelAllocator& alloc = {}) {
    if (alloc) {
      mem_ = alloc(n);
    } else {
      std::shared_ptr<uint8_t[]> heap(new uint8_t[n > 0 ? n : 1]());
      mem_.data = heap.get();
      mem_.owner = std::move(heap);
    }
    size_ = n;
    custom_ = static_cast<bool>(alloc);
  }
  /// Keeps the first `n` bytes (n <= size()); the memory is not reallocated.
  void shrink(size_t n) { size_ = n < size_ ? n : size_; }

  uint8_t* data() { return mem_.data; }
  const uint8_t* data() const { return mem_.data; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint8_t& operator[](size_t i) { return mem_.data[i]; }
  const uint8_t& operator[](size_t i) const { return mem_.data[i]; }
  uint8_t* begin() { return mem_.data; }
  uint8_t* end() { return mem_.data + size_; }
  const uint8_t* begin() const { return mem_.data; }
  const uint8_t* end() const { return mem_.data + size_; }

  /// What a custom allocator returned as the owner (e.g. a pinned torch tensor); null for the
  /// heap default.
  std::shared_ptr<void> customOwner() const { return custom_ ? mem_.owner : nullptr; }

 private:
  PixelMemory mem_;
  size_t size_ = 0;
  bool custom_ = false;
};

}  // namespace slidetrain::wsi
