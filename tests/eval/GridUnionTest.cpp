#include <gtest/gtest.h>

#include <random>
#include <set>

#include "src/eval/GridUnion.h"

using slidetrain::GridPoint;
using slidetrain::GridPolygon;
using slidetrain::GridRing;
using slidetrain::signedArea;
using slidetrain::unionOfCells;

namespace {

GridRing ring(std::initializer_list<GridPoint> pts) { return GridRing(pts); }

double totalArea(const std::vector<GridPolygon>& polys) {
  double a = 0;
  for (const auto& p : polys) {
    a += signedArea(p.outer);
    for (const auto& h : p.holes) a += signedArea(h);
  }
  return a;
}

// Even-odd test of a point against every ring of every polygon.
bool inside(const std::vector<GridPolygon>& polys, double x, double y) {
  bool in = false;
  auto crossRing = [&](const GridRing& r) {
    for (size_t i = 0; i + 1 < r.size(); ++i) {
      const double x0 = double(r[i].x), y0 = double(r[i].y), x1 = double(r[i + 1].x), y1 = double(r[i + 1].y);
      if ((y0 > y) != (y1 > y) && x < x0 + (y - y0) * (x1 - x0) / (y1 - y0)) in = !in;
    }
  };
  for (const auto& p : polys) {
    crossRing(p.outer);
    for (const auto& h : p.holes) crossRing(h);
  }
  return in;
}

}  // namespace

TEST(GridUnion, SingleCell) {
  const auto u = unionOfCells({{0, 0}});
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].outer, ring({{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}));
  EXPECT_TRUE(u[0].holes.empty());
  EXPECT_DOUBLE_EQ(signedArea(u[0].outer), 1.0);
}

TEST(GridUnion, PlusShape) {
  const auto u = unionOfCells({{1, 0}, {0, 1}, {1, 1}, {2, 1}, {1, 2}});
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].outer, ring({{0, 1}, {1, 1}, {1, 0}, {2, 0}, {2, 1}, {3, 1}, {3, 2}, {2, 2},
                              {2, 3}, {1, 3}, {1, 2}, {0, 2}, {0, 1}}));
  EXPECT_TRUE(u[0].holes.empty());
  EXPECT_DOUBLE_EQ(totalArea(u), 5.0);
}

TEST(GridUnion, LShapeMergesCollinearEdges) {
  const auto u = unionOfCells({{0, 0}, {0, 1}, {0, 2}, {1, 0}});
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].outer, ring({{0, 0}, {2, 0}, {2, 1}, {1, 1}, {1, 3}, {0, 3}, {0, 0}}));
  EXPECT_DOUBLE_EQ(totalArea(u), 4.0);
}

TEST(GridUnion, TwoDisjointSquaresAreTwoPolygonsInOrder) {
  // 2x2 blocks, listed in the reverse of the output order, with a duplicate cell.
  const auto u = unionOfCells({{5, 3}, {6, 3}, {5, 4}, {6, 4}, {0, 0}, {1, 0}, {0, 1}, {1, 1}, {1, 1}});
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0].outer, ring({{0, 0}, {2, 0}, {2, 2}, {0, 2}, {0, 0}}));
  EXPECT_EQ(u[1].outer, ring({{5, 3}, {7, 3}, {7, 5}, {5, 5}, {5, 3}}));
  EXPECT_DOUBLE_EQ(totalArea(u), 8.0);
}

TEST(GridUnion, RingWithHoleHasAnOppositelyOrientedInnerRing) {
  std::vector<GridPoint> cells;
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 3; ++x)
      if (!(x == 1 && y == 1)) cells.push_back({x, y});
  const auto u = unionOfCells(cells);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].outer, ring({{0, 0}, {3, 0}, {3, 3}, {0, 3}, {0, 0}}));
  ASSERT_EQ(u[0].holes.size(), 1u);
  EXPECT_EQ(u[0].holes[0], ring({{1, 1}, {1, 2}, {2, 2}, {2, 1}, {1, 1}}));
  EXPECT_DOUBLE_EQ(signedArea(u[0].outer), 9.0);   // exterior: positive (RFC 7946 counter-clockwise)
  EXPECT_DOUBLE_EQ(signedArea(u[0].holes[0]), -1.0);  // hole: the opposite orientation
  EXPECT_DOUBLE_EQ(totalArea(u), 8.0);
}

TEST(GridUnion, DiagonalNeighboursAreSeparatePolygons) {
  // Cells touching at a corner only: two polygons meeting at (1, 1), neither ring touching itself.
  const auto u = unionOfCells({{0, 0}, {1, 1}});
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0].outer, ring({{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}));
  EXPECT_EQ(u[1].outer, ring({{1, 1}, {2, 1}, {2, 2}, {1, 2}, {1, 1}}));
}

TEST(GridUnion, HoleTouchingTheOuterRingAtACornerStaysAHole) {
  // A 3x3 block without its centre and without the corner cell (2, 2): the hole meets the
  // outside at the point (2, 2). The cells stay one polygon whose hole touches the shell there.
  const auto u = unionOfCells({{0, 0}, {1, 0}, {2, 0}, {0, 1}, {2, 1}, {0, 2}, {1, 2}});
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].outer, ring({{0, 0}, {3, 0}, {3, 2}, {2, 2}, {2, 3}, {0, 3}, {0, 0}}));
  ASSERT_EQ(u[0].holes.size(), 1u);
  EXPECT_EQ(u[0].holes[0], ring({{1, 1}, {1, 2}, {2, 2}, {2, 1}, {1, 1}}));
  EXPECT_DOUBLE_EQ(totalArea(u), 7.0);
}

TEST(GridUnion, EmptyInputGivesNoPolygon) { EXPECT_TRUE(unionOfCells({}).empty()); }

TEST(GridUnion, RandomGridsAreCoveredExactly) {
  // Random sets of cells: the area is the cell count, every cell centre is inside and every
  // empty centre outside, each ring is closed, simple (no repeated vertex) and axis-parallel,
  // exteriors are positive and holes negative.
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const int w = 1 + int(rng() % 9), h = 1 + int(rng() % 9);
    const double fill = 0.2 + 0.6 * double(rng() % 100) / 100;
    std::set<std::pair<int64_t, int64_t>> set;
    std::vector<GridPoint> cells;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        if (double(rng() % 1000) / 1000 < fill) set.insert({x - 3, y + 2}), cells.push_back({x - 3, y + 2});
    const auto u = unionOfCells(cells);
    ASSERT_DOUBLE_EQ(totalArea(u), double(set.size())) << "trial " << trial;
    for (int y = -1; y <= h; ++y)
      for (int x = -1; x <= w; ++x)
        ASSERT_EQ(inside(u, x - 3 + 0.5, y + 2 + 0.5), set.count({x - 3, y + 2}) > 0)
            << "trial " << trial << " cell " << x - 3 << "," << y + 2;
    for (const auto& p : u) {
      ASSERT_GT(signedArea(p.outer), 0);
      for (const auto& hr : p.holes) ASSERT_LT(signedArea(hr), 0);
      std::vector<const GridRing*> rings{&p.outer};
      for (const auto& hr : p.holes) rings.push_back(&hr);
      for (const GridRing* r : rings) {
        ASSERT_GE(r->size(), 5u);
        ASSERT_EQ(r->front(), r->back());
        std::set<std::pair<int64_t, int64_t>> seen;
        for (size_t i = 0; i + 1 < r->size(); ++i) {
          ASSERT_TRUE(seen.insert({(*r)[i].x, (*r)[i].y}).second) << "trial " << trial << ": ring repeats a vertex";
          ASSERT_TRUE((*r)[i].x == (*r)[i + 1].x || (*r)[i].y == (*r)[i + 1].y);
        }
      }
    }
  }
}
