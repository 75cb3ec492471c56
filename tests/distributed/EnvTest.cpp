// readLaunchEnv: table of launcher environments, including conflicting ones.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "distributed/Comm.h"
#include "distributed/Env.h"

using namespace slidetrain::dist;

namespace {

const char* kVars[] = {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
                       "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_PROCID", "SLURM_NTASKS",
                       "SLURM_LOCALID", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"};

/// Clears every launcher variable for the test and restores the process environment after, so
/// the test also passes when dist_tests itself runs under mpirun or SLURM.
class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars) {
      if (const char* old = std::getenv(v)) saved_[v] = old;
      unsetenv(v);
    }
  }
  void TearDown() override {
    for (const char* v : kVars) unsetenv(v);
    for (const auto& [k, v] : saved_) setenv(k.c_str(), v.c_str(), 1);
  }
  void set(const std::map<std::string, std::string>& vars) {
    for (const auto& [k, v] : vars) setenv(k.c_str(), v.c_str(), 1);
  }
  std::map<std::string, std::string> saved_;
};

struct Case {
  std::string name;
  std::map<std::string, std::string> vars;
  std::string source;  // empty: expect DistError whose message contains `error`
  int rank = 0, world = 1, localRank = -1, localSize = -1;
  std::string error;
};

}  // namespace

TEST_F(EnvTest, Table) {
  const std::vector<Case> cases = {
      {"nothing", {}, "none", 0, 1, -1, -1, ""},
      {"openmpi",
       {{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "4"},
        {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}},
       "openmpi", 2, 4, 0, 2, ""},
      {"slurm", {{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "1"}}, "slurm",
       1, 2, 1, -1, ""},
      {"torchrun",
       {{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"}},
       "torchrun", 3, 4, 1, 2, ""},
      {"openmpi and torchrun agree",
       {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"RANK", "1"},
        {"WORLD_SIZE", "2"}},
       "openmpi", 1, 2, -1, -1, ""},
      {"mpirun inside sbatch: SLURM describes the batch step",
       {{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"SLURM_PROCID", "0"},
        {"SLURM_NTASKS", "1"}},
       "openmpi", 3, 4, -1, -1, ""},
      {"stale RANK under mpirun",
       {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"}, {"RANK", "0"},
        {"WORLD_SIZE", "2"}},
       "", 0, 0, 0, 0, "disagree"},
      {"slurm vs torchrun world",
       {{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"RANK", "0"}, {"WORLD_SIZE", "8"}},
       "", 0, 0, 0, 0, "WORLD_SIZE=8"},
      {"local ranks disagree",
       {{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
        {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"RANK", "1"}, {"WORLD_SIZE", "2"},
        {"LOCAL_RANK", "0"}},
       "", 0, 0, 0, 0, "local rank"},
      {"garbage", {{"OMPI_COMM_WORLD_RANK", "one"}, {"OMPI_COMM_WORLD_SIZE", "2"}}, "", 0, 0, 0,
       0, "OMPI_COMM_WORLD_RANK=\"one\""},
      {"negative", {{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, "", 0, 0, 0, 0, "RANK"},
      {"rank past world", {{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "", 0, 0, 0, 0, "not below"},
      {"world missing", {{"SLURM_PROCID", "0"}}, "", 0, 0, 0, 0, "SLURM_NTASKS is missing"},
      {"local rank past local size",
       {{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}, {"LOCAL_WORLD_SIZE", "2"}}, "", 0,
       0, 0, 0, "local size"},
  };
  for (const auto& c : cases) {
    for (const char* v : kVars) unsetenv(v);
    set(c.vars);
    SCOPED_TRACE(c.name);
    if (c.source.empty()) {
      try {
        readLaunchEnv();
        ADD_FAILURE() << "expected DistError";
      } catch (const DistError& e) {
        EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << e.what();
      }
      continue;
    }
    const LaunchEnv env = readLaunchEnv();
    EXPECT_EQ(env.source, c.source);
    EXPECT_EQ(env.rank, c.rank);
    EXPECT_EQ(env.worldSize, c.world);
    EXPECT_EQ(env.localRank, c.localRank);
    EXPECT_EQ(env.localSize, c.localSize);
  }
}
