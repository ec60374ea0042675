// What a session may record while the spool is backlogged: past half full,
// each identity gets a budget of audit events (and bytes) per second that
// shrinks as the spool fills (the full audit.backlogged_session_rate at
// 50%, half of it at 70%, one event from 90%), shared by all its sessions,
// and a session that spent it is not read until the budget covers what it
// recorded (at most kMaxThrottle at a time). A flood of small events or of
// large ones slows down as the spool fills and, from one identity, cannot
// fill the last tenth; everyone else goes on, more slowly near the end,
// instead of being refused (red team: 200 KB statements filled an 8 MiB
// spool past an event budget in 13 s).
//
// No I/O and no clock of its own (the caller passes the time); the session
// pauses and resumes reading.
#ifndef WARDEN_DATAPLANE_SESSION_AUDIT_BUDGET_H_
#define WARDEN_DATAPLANE_SESSION_AUDIT_BUDGET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace warden::dataplane::session {

// Bytes per event of a budget (an event is a few hundred bytes), and the
// longest a session stays unread at a time.
inline constexpr double kBudgetBytesPerEvent = 512;
inline constexpr absl::Duration kMaxThrottle = absl::Seconds(60);

// Audit events an identity recorded since `start`, across all its sessions
// (AuditThrottled): while the spool is backlogged, the budget is one per
// identity, so opening more sessions, or a new one per statement, buys no
// more of the spool.
struct AuditWindow {
  absl::Mutex mu;
  absl::Time start ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  int64_t events ABSL_GUARDED_BY(mu) = 0;
  int64_t bytes ABSL_GUARDED_BY(mu) = 0;
  absl::Time last_used ABSL_GUARDED_BY(mu) = absl::InfinitePast();
};

// The windows, by identity (folded user name). Kept past their sessions'
// end (an identity that reconnects finds its unpaid window), dropped once
// idle for a while when there are many.
class AuditWindows {
 public:
  std::shared_ptr<AuditWindow> For(const std::string& identity,
                                   absl::Time now);

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<AuditWindow>> windows_
      ABSL_GUARDED_BY(mu_);
};

// Counts one recorded event of `bytes` in `window`.
void CountAudit(AuditWindow& window, size_t bytes, absl::Time now);

// Whether a session of `window`'s identity must stop being read now, with
// the spool `fill` (0 to 1) full and audit.backlogged_session_rate `rate`
// (0: no limit): the time it may be read again, or nullopt. A window that
// is paid for starts afresh.
struct Throttle {
  absl::Time until;
  int64_t events = 0;  // what the window holds (for the log)
  int64_t bytes = 0;
};
std::optional<Throttle> AuditThrottle(AuditWindow& window, int64_t rate,
                                      double fill, absl::Time now);

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_AUDIT_BUDGET_H_
