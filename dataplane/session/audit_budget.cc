#include "dataplane/session/audit_budget.h"

#include <algorithm>

namespace warden::dataplane::session {

std::shared_ptr<AuditWindow> AuditWindows::For(const std::string& identity,
                                               absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto& window = windows_[identity];
  if (window == nullptr) {
    window = std::make_shared<AuditWindow>();
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

void CountAudit(AuditWindow& window, size_t bytes, absl::Time now) {
  absl::MutexLock lock(&window.mu);
  if (window.events++ == 0) window.start = now;
  window.bytes += static_cast<int64_t>(bytes);
  window.last_used = now;
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
  const double budget =
      std::max(1.0, static_cast<double>(rate) * (0.9 - fill) / 0.4);
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
