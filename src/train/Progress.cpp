#include "src/train/Progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace slidetrain {

namespace {

bool underLauncher() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace

Progress::Progress(bool enabled, int64_t logEvery, const std::string& mode)
    : enabled_(enabled && mode != "none"),
      tty_(enabled_ && (mode == "bar" ||
                        (mode == "auto" && isatty(fileno(stdout)) == 1 && !underLauncher()))),
      logEvery_(std::max<int64_t>(1, logEvery)), start_(std::chrono::steady_clock::now()),
      lastDraw_(start_) {}

std::string Progress::formatDuration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(t / 3600),
                  static_cast<long long>(t / 60 % 60));
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(t / 60),
                  static_cast<long long>(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(t));
  return buf;
}

std::string Progress::line(const ProgressSample& s, double eta) {
  constexpr int kWidth = 20;
  const double frac = s.batches > 0 ? static_cast<double>(s.batch) / s.batches : 0;
  std::string bar(kWidth, ' ');
  std::fill(bar.begin(), bar.begin() + std::clamp(static_cast<int>(frac * kWidth), 0, kWidth), '#');
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "epoch %lld/%lld [%s] %lld/%lld  loss %.4f  acc %.3f  %.0f patches/s  "
                "data-wait %.0f%%  queue %.0f%%  ETA %s",
                static_cast<long long>(s.epoch), static_cast<long long>(s.epochs), bar.c_str(),
                static_cast<long long>(s.batch), static_cast<long long>(s.batches), s.loss,
                s.accuracy, s.patchesPerSecond, 100 * s.dataWaitShare, 100 * s.queueFill,
                formatDuration(eta).c_str());
  return buf;
}

void Progress::update(const ProgressSample& s) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (firstStep_ < 0) firstStep_ = s.step, start_ = now;
  const double el = std::chrono::duration<double>(now - start_).count();
  const int64_t done = s.step - firstStep_;
  const double eta = done > 0 ? el / done * static_cast<double>(s.totalSteps - s.step) : -1;
  if (tty_) {
    // Redraw at most 10 times a second, and always at the end of an epoch.
    if (s.batch != s.batches && std::chrono::duration<double>(now - lastDraw_).count() < 0.1) return;
    lastDraw_ = now;
    std::printf("\r%s\033[K", line(s, eta).c_str());
    open_ = true;
  } else {
    if (s.batch % logEvery_ != 0) return;
    std::printf("%s\n", line(s, eta).c_str());
  }
  std::fflush(stdout);
}

void Progress::endLine() {
  if (open_) std::printf("\n");
  open_ = false;
  std::fflush(stdout);
}

}  // namespace slidetrain
