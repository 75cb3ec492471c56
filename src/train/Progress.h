#pragma once
// Rank 0's training progress: a one-line bar redrawn in place with '\r' when stdout is a
// terminal, plain lines every `logEvery` steps otherwise (log files). OpenMPI hands its ranks a
// pseudo-terminal even when mpirun's own output goes to a file, so under a launcher "auto"
// prints lines; train.progress=bar forces the bar.
#include <chrono>
#include <cstdint>
#include <string>

namespace slidetrain {

struct ProgressSample {
  int64_t epoch = 0, epochs = 0;   ///< 1-based epoch and total
  int64_t batch = 0, batches = 0;  ///< micro-batches done in this epoch and per epoch
  int64_t step = 0, totalSteps = 0;  ///< optimizer steps done and planned
  double loss = 0, accuracy = 0;   ///< running means over the epoch (this rank's view)
  double patchesPerSecond = 0;     ///< all ranks
  double dataWaitShare = 0;        ///< share of step time spent waiting for the stream
  double queueFill = 0;            ///< stream queue fill 0..1
};

class Progress {
 public:
  /// `enabled` false (ranks other than 0) makes every call a no-op. `mode`: auto, bar, lines.
  Progress(bool enabled, int64_t logEvery, const std::string& mode = "auto");
  /// Called after every micro-batch; draws when due.
  void update(const ProgressSample& s);
  /// Ends the in-place line (before printing other output).
  void endLine();
  bool interactive() const { return tty_; }

  /// "1h02m", "4m05s", "12s".
  static std::string formatDuration(double seconds);
  /// The text of one progress line (no newline).
  static std::string line(const ProgressSample& s, double etaSeconds);

 private:
  bool enabled_, tty_;
  int64_t logEvery_;
  bool open_ = false;
  std::chrono::steady_clock::time_point start_, lastDraw_;
  int64_t firstStep_ = -1;
};

}  // namespace slidetrain
