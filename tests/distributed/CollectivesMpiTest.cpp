// MpiComm collectives under mpirun: closed-form expectations (rank r sends r).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdlib>

#include "distributed/MpiComm.h"

using namespace slidetrain::dist;

namespace {

std::shared_ptr<Comm> comm() {
  // A short timeout: a test bug that desynchronises ranks aborts in 60 s instead of 10 min.
  static auto c = makeComm("mpi", CommOptions{std::chrono::seconds(60)});
  return c;
}

}  // namespace

TEST(Collectives, WorldMatchesLauncher) {
  const int n = comm()->size(), r = comm()->rank();
  EXPECT_EQ(n, worldSize());
  EXPECT_EQ(r, worldRank());
  const char* envRank = std::getenv("OMPI_COMM_WORLD_RANK");
  ASSERT_NE(envRank, nullptr) << "run under mpirun";
  EXPECT_EQ(r, std::atoi(envRank));
  EXPECT_GE(localRank(), 0);
  EXPECT_LT(localRank(), localSize());
  EXPECT_EQ(localSize(), n);  // CTest runs every rank on this one node
}

TEST(Collectives, SumOfRanksForEveryDtype) {
  const int n = comm()->size(), r = comm()->rank();
  for (auto dtype : {at::kFloat, at::kDouble, at::kInt, at::kLong, at::kByte, at::kChar,
                     at::kShort, at::kHalf, at::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    at::Tensor t = at::full({1000}, r, at::TensorOptions().dtype(dtype));
    comm()->allReduce(t, ReduceOp::Sum);
    EXPECT_EQ(t.scalar_type(), dtype);
    EXPECT_TRUE(at::equal(t, at::full({1000}, n * (n - 1) / 2, at::TensorOptions().dtype(dtype))));
  }
}

TEST(Collectives, AvgMaxMin) {
  const int n = comm()->size(), r = comm()->rank();
  at::Tensor avg = at::full({17}, static_cast<double>(r));
  comm()->allReduce(avg, ReduceOp::Avg);
  EXPECT_TRUE(at::allclose(avg, at::full({17}, (n - 1) / 2.0)));
  at::Tensor iavg = at::full({3}, static_cast<int64_t>(2 * r));
  comm()->allReduce(iavg, ReduceOp::Avg);  // integer average truncates: (n-1)
  EXPECT_TRUE(at::equal(iavg, at::full({3}, static_cast<int64_t>(n - 1))));
  at::Tensor mx = at::tensor({static_cast<float>(r), static_cast<float>(-r)});
  comm()->allReduce(mx, ReduceOp::Max);
  EXPECT_TRUE(at::equal(mx, at::tensor({static_cast<float>(n - 1), 0.0f})));
  at::Tensor mn = at::tensor({static_cast<int>(r), static_cast<int>(-r)});
  comm()->allReduce(mn, ReduceOp::Min);
  EXPECT_TRUE(at::equal(mn, at::tensor({0, -(n - 1)})));
}

TEST(Collectives, NonContiguousTensorIsReducedInPlace) {
  const int n = comm()->size(), r = comm()->rank();
  at::Tensor base = at::arange(12, at::kFloat).view({3, 4}) * (r + 1);
  at::Tensor t = base.t();  // a transposed view
  ASSERT_FALSE(t.is_contiguous());
  comm()->allReduce(t, ReduceOp::Sum);
  EXPECT_TRUE(at::equal(base, at::arange(12, at::kFloat).view({3, 4}) * (n * (n + 1) / 2)));
}

TEST(Collectives, BroadcastFromLastRank) {
  const int n = comm()->size(), r = comm()->rank();
  at::Tensor t = at::full({5, 2}, static_cast<float>(r));
  comm()->broadcast(t, n - 1);
  EXPECT_TRUE(at::equal(t, at::full({5, 2}, static_cast<float>(n - 1))));
  EXPECT_THROW(comm()->broadcast(t, n), DistError);  // local check: no collective issued
}

TEST(Collectives, AllGather) {
  const int n = comm()->size(), r = comm()->rank();
  at::Tensor mine = at::tensor({static_cast<int64_t>(r), static_cast<int64_t>(2 * r)});
  at::Tensor all = comm()->allGather(mine);
  ASSERT_EQ(all.sizes(), (std::vector<int64_t>{n, 2}));
  for (int i = 0; i < n; ++i)
    EXPECT_TRUE(at::equal(all[i], at::tensor({static_cast<int64_t>(i), static_cast<int64_t>(2 * i)})));
  at::Tensor h = comm()->allGather(at::full({3}, static_cast<float>(r)).to(at::kHalf));
  EXPECT_EQ(h.scalar_type(), at::kHalf);
  EXPECT_EQ(h.to(at::kFloat).sum().item<float>(), 3.0f * n * (n - 1) / 2);
}

TEST(Collectives, AsyncWaitedOutOfOrder) {
  const int n = comm()->size(), r = comm()->rank();
  std::vector<at::Tensor> ts;
  std::vector<std::shared_ptr<Work>> works;
  for (int i = 0; i < 4; ++i) {
    ts.push_back(at::full({1 << (10 + 2 * i)}, static_cast<float>(r + i)));
    works.push_back(comm()->allReduceAsync(ts.back(), i % 2 ? ReduceOp::Avg : ReduceOp::Sum));
  }
  for (int i = 3; i >= 0; --i) works[i]->wait();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(works[i]->isCompleted());
    const float expect = i % 2 ? (n - 1) / 2.0f + i : n * (n - 1) / 2.0f + n * i;
    EXPECT_TRUE(at::allclose(ts[i], at::full_like(ts[i], expect))) << i;
  }
  comm()->barrier();
}

TEST(Collectives, UnsupportedDtypeThrowsBeforeCommunicating) {
  at::Tensor b = at::ones({2}, at::kBool);
  EXPECT_THROW(comm()->allReduce(b), DistError);
}

TEST(Collectives, SeveralCommunicatorsAreIndependent) {
  auto other = makeComm("mpi");  // collective: created at the same point on every rank
  const int n = other->size(), r = other->rank();
  at::Tensor a = at::full({2}, static_cast<float>(r));
  auto w = comm()->allReduceAsync(a);
  at::Tensor b = at::full({2}, 1.0f);
  other->allReduce(b);
  w->wait();
  EXPECT_TRUE(at::equal(a, at::full({2}, n * (n - 1) / 2.0f)));
  EXPECT_TRUE(at::equal(b, at::full({2}, static_cast<float>(n))));
}

TEST(Collectives, AsyncAllReducesCompleteInSubmissionOrderOnBothPaths) {
  // Many outstanding allReduceAsync calls (the communication thread's FIFO queue, or polled
  // MPI_Iallreduce requests), waited for in reverse order; every result has its closed form.
  const int n = comm()->size(), r = comm()->rank();
  for (bool thread : {true, false}) {
    SCOPED_TRACE(thread ? "comm thread" : "polled");
    CommOptions co{std::chrono::seconds(60)};
    co.commThread = thread;
    auto c = makeComm("mpi", co);
    std::vector<at::Tensor> ts;
    std::vector<std::shared_ptr<Work>> works;
    for (int k = 0; k < 24; ++k) {
      const int64_t len = 1 + 997 * k;
      if (k % 3 == 0) ts.push_back(at::full({len}, static_cast<float>(r + k)));
      else if (k % 3 == 1) ts.push_back(at::full({len}, static_cast<double>(r)));
      else ts.push_back(at::full({len}, static_cast<int64_t>(r), at::kLong));
      const ReduceOp op = k % 3 == 1 ? ReduceOp::Avg : k % 3 == 2 ? ReduceOp::Max : ReduceOp::Sum;
      works.push_back(c->allReduceAsync(ts.back(), op));
    }
    for (int k = 23; k >= 0; --k) works[static_cast<size_t>(k)]->wait();
    for (int k = 0; k < 24; ++k) {
      SCOPED_TRACE(k);
      const at::Tensor& t = ts[static_cast<size_t>(k)];
      ASSERT_TRUE(works[static_cast<size_t>(k)]->isCompleted());
      if (k % 3 == 0)
        EXPECT_TRUE(at::equal(t, at::full_like(t, n * (n - 1) / 2.0f + n * k)));
      else if (k % 3 == 1)
        EXPECT_TRUE(at::allclose(t, at::full_like(t, (n - 1) / 2.0)));
      else
        EXPECT_TRUE(at::equal(t, at::full_like(t, n - 1)));
    }
    // A staged (non-contiguous) tensor gets its result copied back by the thread.
    at::Tensor nc = at::full({4, 6}, static_cast<float>(r)).t();
    c->allReduceAsync(nc, ReduceOp::Sum)->wait();
    EXPECT_TRUE(at::equal(nc, at::full({6, 4}, n * (n - 1) / 2.0f)));
  }
}
