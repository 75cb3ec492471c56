#pragma once
// Internal: the on-disk format of PatchIndex and the hash used for fingerprints and checksums.
#include <cstddef>
#include <cstdint>

namespace slidetrain::wsi::detail {

/// 64-bit FNV-1a, chainable: pass the previous result as `h` to continue a stream.
uint64_t fnv1a(const void* data, size_t size, uint64_t h = 0xcbf29ce484222325ull);

/// "SLTPIDX" + NUL, then a uint32 version. Bump kPatchIndexVersion whenever the layout changes.
constexpr char kPatchIndexMagic[8] = {'S', 'L', 'T', 'P', 'I', 'D', 'X', '\0'};
/// 2: read size, target resolution, background filters, patch mpp and slide tissue fraction.
constexpr uint32_t kPatchIndexVersion = 2;

}  // namespace slidetrain::wsi::detail
