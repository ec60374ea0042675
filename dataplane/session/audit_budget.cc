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

namespace {

// Events a second an identity of `weight` may record with the spool `fill`
// full: the rate at half full, falling to one at kReserveFill; past half,
// below the reserve, the fill counts as much as the weight.
double Budget(int64_t rate, double fill, double weight) {
  const double weighed =
      fill >= kReserveFill ? fill : 0.5 + (std::max(fill, 0.5) - 0.5) * weight;
  return std::max(1.0,
                  static_cast<double>(rate) * (kReserveFill - weighed) / 0.4);
}

// What recording `events` events of `bytes` costs at `budget`, in seconds.
double Price(double events, double bytes, double budget) {
  return std::max(events / budget, bytes / (budget * kBudgetBytesPerEvent));
}

// The weight Budget gives `window`'s identity at `fill` (in the reserve
// the weight does not count, so the tally is not read).
double WeightAt(AuditWindow& window, double fill) {
  return fill >= kReserveFill ? 1.0 : BacklogWeight(window);
}

}  // namespace

void CountAudit(AuditWindow& window, size_t bytes, int64_t rate, double fill,
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
    window.last_used = now;
    if (rate <= 0 || fill <= 0.5) {
      // Up to half full nothing is owed.
      window.start = absl::InfinitePast();
      window.events = 0;
      window.bytes = 0;
      window.cost = 0;
    } else {
      if (window.events++ == 0 && window.start == absl::InfinitePast()) {
        window.start = now;
      }
      window.bytes += static_cast<int64_t>(bytes);
    }
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
  if (rate > 0 && fill > 0.5) {
    // Priced now, at this fill and weight: an event is never priced again
    // when the spool fills further (a light session used to wait 9 s for
    // events it had recorded at a larger budget).
    const double cost = Price(1, static_cast<double>(bytes),
                              Budget(rate, fill, WeightAt(window, fill)));
    absl::MutexLock lock(&window.mu);
    window.cost += cost;
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
                                      double fill, absl::Time now,
                                      size_t next_bytes) {
  if (rate <= 0 || fill <= 0.5) return std::nullopt;
  int64_t events, bytes;
  double cost;
  absl::Time start;
  {
    absl::MutexLock lock(&window.mu);
    if (window.events == 0 && next_bytes > 0 &&
        window.start == absl::InfinitePast()) {
      window.start = now;  // a statement waits to be paid for from now
    }
    events = window.events;
    bytes = window.bytes + static_cast<int64_t>(next_bytes);
    cost = window.cost;
    start = window.start;
  }
  if (events == 0 && next_bytes == 0) return std::nullopt;
  // What was recorded, at the prices it was recorded at, and the next
  // statement's bytes at the fill it would leave.
  const double seconds =
      cost + Price(0, static_cast<double>(next_bytes),
                   Budget(rate, fill, WeightAt(window, fill)));
  const absl::Time paid_at =
      start + std::max(absl::Seconds(1), absl::Seconds(seconds));
  if (now >= paid_at) {  // paid for: a new window, a new budget.
    absl::MutexLock lock(&window.mu);
    // (Unless another session of the identity began one meanwhile.)
    if (window.start == start) {
      window.start = events == 0 ? absl::InfinitePast() : now;
      window.events = 0;
      window.bytes = 0;
      window.cost = 0;
    }
    return std::nullopt;
  }
  if (seconds < 1) return std::nullopt;  // within this second's budget
  // Checked again at least every kMaxThrottle (the spool may drain).
  return Throttle{std::min(paid_at, now + kMaxThrottle), events, bytes};
}

}  // namespace warden::dataplane::session
