#pragma once
// The exact union of unit squares on an integer grid, as polygons with holes: how the patches a
// model calls positive become one region for QuPath (src/eval/Exports.h). Tracing the boundary
// edges of the cell set is exact and linear in the number of cells, so no geometry library is
// needed for axis-aligned grids.
#include <cstdint>
#include <vector>

namespace slidetrain {

struct GridPoint {
  int64_t x = 0, y = 0;
  bool operator==(const GridPoint& o) const { return x == o.x && y == o.y; }
  bool operator!=(const GridPoint& o) const { return !(*this == o); }
  bool operator<(const GridPoint& o) const { return x != o.x ? x < o.x : y < o.y; }
};

/// A closed ring (back() == front()) of grid vertices, without collinear vertices, starting at
/// its smallest vertex (by x, then y).
using GridRing = std::vector<GridPoint>;

struct GridPolygon {
  GridRing outer;               ///< positive signedArea (counter-clockwise in x-right, y-up axes)
  std::vector<GridRing> holes;  ///< negative signedArea, ordered by their first vertex
};

/// Union of the cells [x, x+1] x [y, y+1] of `cells` (duplicates allowed). Cells sharing an
/// edge belong to one polygon; cells that touch only at a corner belong to different polygons,
/// which then meet at that point, and a hole that touches its shell at a corner stays a hole:
/// so every ring is simple, as OGC/GeoJSON validity asks. Exteriors are counter-clockwise and
/// holes clockwise in the coordinates as written (RFC 7946's right-hand rule; in image axes,
/// y down, they look the other way round). Polygons are ordered by their outer ring's first
/// vertex. Coordinates must fit in 32 bits.
std::vector<GridPolygon> unionOfCells(const std::vector<GridPoint>& cells);

/// Shoelace area: positive for counter-clockwise rings (x right, y up).
double signedArea(const GridRing& ring);

}  // namespace slidetrain
