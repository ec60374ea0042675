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
// The shrinking budget weighs on an identity by its part of the backlog:
// the bytes it recorded since the spool went past half full, against the
// heaviest identity's. The heaviest pays the full price; one that recorded
// a tenth of what the heaviest did feels a tenth of the fill beyond half.
// Identities that record alike are all slowed as before; a flood no longer
// slows everyone else to one event a second once it has pushed the spool
// past 90% (a session next to a 100 KB-statement flood waited 9 s for
// events it had recorded at a larger budget). Recording more raises an
// identity's part, so a light identity that starts to flood soon pays the
// full price too.
//
// No I/O and no clock of its own (the caller passes the time); the session
// pauses and resumes reading.
#ifndef WARDEN_DATAPLANE_SESSION_AUDIT_BUDGET_H_
#define WARDEN_DATAPLANE_SESSION_AUDIT_BUDGET_H_

#include <atomic>
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

// What every identity recorded since the spool last went past half full
// (a backlog): the heaviest identity's bytes, by which the others' part is
// weighed. A new backlog (epoch) begins once the spool is seen at or below
// half full again.
struct BacklogTally {
  absl::Mutex mu;
  uint64_t epoch ABSL_GUARDED_BY(mu) = 0;
  int64_t heaviest ABSL_GUARDED_BY(mu) = 0;
  // Whether the last fill seen was past half (read without the lock on
  // every event).
  std::atomic<bool> backlogged{false};
};

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
  // The bytes it recorded in backlog `backlog_epoch` of `tally` (null:
  // weighed as the heaviest, as a window on its own is).
  std::shared_ptr<BacklogTally> tally;
  uint64_t backlog_epoch ABSL_GUARDED_BY(mu) = 0;
  int64_t backlog_bytes ABSL_GUARDED_BY(mu) = 0;
};

// The windows, by identity (folded user name), sharing one BacklogTally.
// Kept past their sessions' end (an identity that reconnects finds its
// unpaid window), dropped once idle for a while when there are many.
class AuditWindows {
 public:
  AuditWindows() : tally_(std::make_shared<BacklogTally>()) {}

  std::shared_ptr<AuditWindow> For(const std::string& identity,
                                   absl::Time now);

 private:
  const std::shared_ptr<BacklogTally> tally_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<AuditWindow>> windows_
      ABSL_GUARDED_BY(mu_);
};

// Counts one recorded event of `bytes` in `window`, with the spool `fill`
// (0 to 1) full.
void CountAudit(AuditWindow& window, size_t bytes, double fill,
                absl::Time now);

// The part of the backlog `window`'s identity recorded, against the
// heaviest identity's (0 to 1; 1 without a tally).
double BacklogWeight(AuditWindow& window);

// Whether a session of `window`'s identity must stop being read now, with
// the spool `fill` (0 to 1) full and audit.backlogged_session_rate `rate`
// (0: no limit): the time it may be read again, or nullopt. The fill past
// half counts as much as the identity's BacklogWeight. A window that is
// paid for starts afresh.
struct Throttle {
  absl::Time until;
  int64_t events = 0;  // what the window holds (for the log)
  int64_t bytes = 0;
};
std::optional<Throttle> AuditThrottle(AuditWindow& window, int64_t rate,
                                      double fill, absl::Time now);

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_AUDIT_BUDGET_H_
