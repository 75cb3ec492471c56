#!/usr/bin/env python3
"""Writes the seed corpus of the patch_index fuzz target (corpus/patch_index/seed_*.pidx) in the
layout of wsi/PatchIndexFile.cpp. Rerun after a change of that layout (kPatchIndexVersion).
The fuzz target recomputes the trailing checksum itself; these files carry the right one too,
so PatchIndex::load reads them as they are."""
import os
import struct

VERSION = 2  # detail::kPatchIndexVersion


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def pidx(slide, fp, level, size, stride, read, min_tissue, ds, mpp, mag, white, black, wt, bt,
         patch_mpp, tissue_fraction, patches):
    s = lambda t: struct.pack('<I', len(t)) + t.encode()
    b = b'SLTPIDX\0' + struct.pack('<I', VERSION) + s(slide) + s(fp)
    b += struct.pack('<4i', level, size, stride, read)
    b += struct.pack('<4d', min_tissue, ds, mpp, mag)
    b += struct.pack('<2d2i', white, black, wt, bt)
    b += struct.pack('<2dQ', patch_mpp, tissue_fraction, len(patches))
    for x, y, t, lab in patches:
        b += struct.pack('<qqfi', x, y, t, lab)
    return b + struct.pack('<Q', fnv1a(b))


out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'patch_index')
os.makedirs(out, exist_ok=True)
seeds = {
    'seed_level.pidx': pidx('/data/slides/S01.svs', '1f2e-3d4c-0123456789abcdef', 1, 64, 32, 0, 0.25,
                            4.0, 0, 0, 1, 1, 220, 30, 0, 0.375,
                            [(0, 1, 0.0, 0), (128, 8, 0.5, 1), (4096, 2048, 1.0, 2)]),
    'seed_target_mpp.pidx': pidx('slides/b.tif', 'ff-ee-0000000000000001', 2, 224, 0, 230, 0.5,
                                 3.9993, 0.5, 0, 0.9, 0.5, 200, 40, 0.5, 0.1,
                                 [(-5, 7, 0.75, -1), (2**40, 2**33, 0.6, 0)]),
    'seed_empty_magnification.pidx': pidx('', '', 0, 1, 0, 1, 0, 1.0, 0, 20.0, 1, 1, 255, 0, 0, 0, []),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
    print(name, len(data), 'bytes')
