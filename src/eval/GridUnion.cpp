#include "src/eval/GridUnion.h"

#include <algorithm>
#include <array>
#include <map>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace slidetrain {
namespace {

constexpr int64_t kMaxCoordinate = int64_t(1) << 30;

uint64_t key(int64_t x, int64_t y) { return (uint64_t(uint32_t(x)) << 32) | uint32_t(y); }

// A boundary edge of one cell, directed so that the cell is on its left (x right, y up).
struct Edge {
  GridPoint from, to;
  int32_t cell;
};

// Drops vertices where the ring goes straight on, starts it at its smallest vertex (a corner,
// so never dropped) and closes it.
GridRing canonical(const GridRing& open) {
  GridRing r;
  const size_t n = open.size();
  for (size_t i = 0; i < n; ++i) {
    const GridPoint& a = open[(i + n - 1) % n];
    const GridPoint& b = open[i];
    const GridPoint& c = open[(i + 1) % n];
    const bool straight = (a.x == b.x && b.x == c.x) || (a.y == b.y && b.y == c.y);
    if (!straight) r.push_back(b);
  }
  std::rotate(r.begin(), std::min_element(r.begin(), r.end()), r.end());
  r.push_back(r.front());
  return r;
}

}  // namespace

double signedArea(const GridRing& ring) {
  double twice = 0;
  for (size_t i = 0; i + 1 < ring.size(); ++i)
    twice += double(ring[i].x) * double(ring[i + 1].y) - double(ring[i + 1].x) * double(ring[i].y);
  return twice / 2;
}

std::vector<GridPolygon> unionOfCells(const std::vector<GridPoint>& input) {
  std::vector<GridPoint> cells(input);
  std::sort(cells.begin(), cells.end());
  cells.erase(std::unique(cells.begin(), cells.end()), cells.end());
  const int32_t n = static_cast<int32_t>(cells.size());
  std::unordered_map<uint64_t, int32_t> indexOf;
  indexOf.reserve(cells.size() * 2);
  for (int32_t i = 0; i < n; ++i) {
    const GridPoint& c = cells[size_t(i)];
    if (c.x <= -kMaxCoordinate || c.x >= kMaxCoordinate || c.y <= -kMaxCoordinate || c.y >= kMaxCoordinate)
      throw std::invalid_argument("unionOfCells: cell (" + std::to_string(c.x) + ", " +
                                  std::to_string(c.y) + ") is outside +-2^30");
    indexOf.emplace(key(c.x, c.y), i);
  }
  auto find = [&](int64_t x, int64_t y) {
    const auto it = indexOf.find(key(x, y));
    return it == indexOf.end() ? -1 : it->second;
  };

  // Edge-connected components: they decide how the boundary passes a vertex where two cells
  // touch diagonally (below).
  std::vector<int32_t> component(cells.size(), -1);
  int32_t components = 0;
  std::vector<int32_t> stack;
  for (int32_t s = 0; s < n; ++s) {
    if (component[size_t(s)] >= 0) continue;
    component[size_t(s)] = components;
    stack.push_back(s);
    while (!stack.empty()) {
      const GridPoint c = cells[size_t(stack.back())];
      stack.pop_back();
      const std::array<GridPoint, 4> next{{{c.x + 1, c.y}, {c.x - 1, c.y}, {c.x, c.y + 1}, {c.x, c.y - 1}}};
      for (const GridPoint& p : next) {
        const int32_t j = find(p.x, p.y);
        if (j >= 0 && component[size_t(j)] < 0) component[size_t(j)] = components, stack.push_back(j);
      }
    }
    ++components;
  }

  // Every cell side that faces an empty cell, with the cell on its left.
  std::vector<Edge> edges;
  std::unordered_map<uint64_t, std::array<int32_t, 2>> leaving;  // vertex -> up to 2 edges
  auto add = [&](GridPoint from, GridPoint to, int32_t cell) {
    auto& slot = leaving.try_emplace(key(from.x, from.y), std::array<int32_t, 2>{-1, -1}).first->second;
    slot[slot[0] < 0 ? 0 : 1] = static_cast<int32_t>(edges.size());
    edges.push_back({from, to, cell});
  };
  for (int32_t i = 0; i < n; ++i) {
    const int64_t x = cells[size_t(i)].x, y = cells[size_t(i)].y;
    if (find(x, y - 1) < 0) add({x, y}, {x + 1, y}, i);
    if (find(x + 1, y) < 0) add({x + 1, y}, {x + 1, y + 1}, i);
    if (find(x, y + 1) < 0) add({x + 1, y + 1}, {x, y + 1}, i);
    if (find(x - 1, y) < 0) add({x, y + 1}, {x, y}, i);
  }

  // The edge after `e`. Two edges leave a vertex only where two cells touch diagonally and the
  // other two are empty: one edge belongs to e's own cell (a left turn), the other to the
  // diagonal cell (a right turn). Cells of different components keep their own rings (left), so
  // polygons meet at the point; cells of one component pass over to each other (right), which
  // splits the boundary into the shell and a hole that touches it at the point. Either way this
  // is a bijection on edges, so following it from any edge comes back to that edge.
  auto after = [&](int32_t e) {
    const Edge& in = edges[size_t(e)];
    const std::array<int32_t, 2>& out = leaving.at(key(in.to.x, in.to.y));
    if (out[1] < 0) return out[0];
    const int32_t own = edges[size_t(out[0])].cell == in.cell ? out[0] : out[1];
    const int32_t other = own == out[0] ? out[1] : out[0];
    const bool same = component[size_t(in.cell)] == component[size_t(edges[size_t(other)].cell)];
    return same ? other : own;
  };

  std::vector<GridPolygon> polygons(static_cast<size_t>(components));
  std::vector<char> used(edges.size(), 0);
  for (size_t s = 0; s < edges.size(); ++s) {
    if (used[s]) continue;
    GridRing open;
    int32_t e = static_cast<int32_t>(s);
    do {
      used[size_t(e)] = 1;
      open.push_back(edges[size_t(e)].from);
      e = after(e);
    } while (e != static_cast<int32_t>(s));
    GridRing ring = canonical(open);
    GridPolygon& p = polygons[size_t(component[size_t(edges[s].cell)])];
    if (signedArea(ring) > 0) {
      if (!p.outer.empty()) throw std::logic_error("unionOfCells: two shells for one component");
      p.outer = std::move(ring);
    } else {
      p.holes.push_back(std::move(ring));
    }
  }
  for (auto& p : polygons) {
    if (p.outer.empty()) throw std::logic_error("unionOfCells: a component without a shell");
    std::sort(p.holes.begin(), p.holes.end(),
              [](const GridRing& a, const GridRing& b) { return a.front() < b.front(); });
  }
  std::sort(polygons.begin(), polygons.end(),
            [](const GridPolygon& a, const GridPolygon& b) { return a.outer.front() < b.outer.front(); });
  return polygons;
}

}  // namespace slidetrain
