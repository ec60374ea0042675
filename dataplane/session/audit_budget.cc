#include "dataplane/session/audit_budget.h"

#include <algorithm>

namespace warden::dataplane::session {

std::shared_ptr<AuditWindow> AuditWindows::For(const std::string& identity,
                                               absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto& window = windows_[identity];
  if (window == nullptr) {
    window = std::make_shared<AuditWindow>();
    window->tally = tally_;
    if (windows_.size() > 4096) {
      // Those no session holds and idle past the longest pause.
      for (auto it = windows_.begin(); it != windows_.end();) {
        bool idle = false;
        if (it->second.use_count() == 1 && it->second != window) {
          absl::MutexLock w(&it->second->mu);
          idle = now - it->second->last_used > 2 * kMaxThrottle;
        }
        if (idle) {
          windows_.erase(it++);
        } else {
          ++it;
        }
      }
    }
  }
  return window;
}

void CountAudit(AuditWindow& window, size_t bytes, double fill,
                absl::Time now) {
  BacklogTally* const tally = window.tally.get();
  uint64_t epoch = 0;
  if (tally != nullptr) {
    if (fill <= 0.5) {
      // The backlog is over; the next one is weighed afresh.
      if (tally->backlogged.load(std::memory_order_relaxed)) {
        tally->backlogged.store(false, std::memory_order_relaxed);
      }
    } else {
      absl::MutexLock lock(&tally->mu);
      if (!tally->backlogged.load(std::memory_order_relaxed)) {
        tally->backlogged.store(true, std::memory_order_relaxed);
        ++tally->epoch;
        tally->heaviest = 0;
      }
      epoch = tally->epoch;
    }
  }
  int64_t backlog_bytes = 0;
  {
    absl::MutexLock lock(&window.mu);
    if (window.events++ == 0) window.start = now;
    window.bytes += static_cast<int64_t>(bytes);
    window.last_used = now;
    if (epoch != 0) {
      if (window.backlog_epoch != epoch) {
        window.backlog_epoch = epoch;
        window.backlog_bytes = 0;
      }
      window.backlog_bytes += static_cast<int64_t>(bytes);
      backlog_bytes = window.backlog_bytes;
    }
  }
  if (epoch != 0) {
    absl::MutexLock lock(&tally->mu);
    if (tally->epoch == epoch) {
      tally->heaviest = std::max(tally->heaviest, backlog_bytes);
    }
  }
}

double BacklogWeight(AuditWindow& window) {
  BacklogTally* const tally = window.tally.get();
  if (tally == nullptr) return 1;
  uint64_t epoch;
  int64_t heaviest;
  {
    absl::MutexLock lock(&tally->mu);
    epoch = tally->epoch;
    heaviest = tally->heaviest;
  }
  int64_t mine;
  {
    absl::MutexLock lock(&window.mu);
    mine = window.backlog_epoch == epoch ? window.backlog_bytes : 0;
  }
  if (heaviest <= 0) return 0;
  return std::min(1.0, static_cast<double>(mine) / heaviest);
}

std::optional<Throttle> AuditThrottle(AuditWindow& window, int64_t rate,
                                      double fill, absl::Time now) {
  if (rate <= 0 || fill <= 0.5) return std::nullopt;
  int64_t events, bytes;
  absl::Time start;
  {
    absl::MutexLock lock(&window.mu);
    events = window.events;
    bytes = window.bytes;
    start = window.start;
  }
  if (events == 0) return std::nullopt;
  // Past half full, as much of the fill as the identity's part of the
  // backlog.
  const double weighed = 0.5 + (fill - 0.5) * BacklogWeight(window);
  const double budget =
      std::max(1.0, static_cast<double>(rate) * (0.9 - weighed) / 0.4);
  const double seconds =
      std::max(static_cast<double>(events) / budget,
               static_cast<double>(bytes) / (budget * kBudgetBytesPerEvent));
  const absl::Time window_end =
      start + std::min(std::max(absl::Seconds(1), absl::Seconds(seconds)),
                       kMaxThrottle);
  if (now >= window_end) {  // paid for: a new window, a new budget.
    absl::MutexLock lock(&window.mu);
    // (Unless another session of the identity began one meanwhile.)
    if (window.start == start) {
      window.start = now;
      window.events = 0;
      window.bytes = 0;
    }
    return std::nullopt;
  }
  if (seconds < 1) return std::nullopt;  // within this second's budget
  return Throttle{window_end, events, bytes};
}

}  // namespace warden::dataplane::session
