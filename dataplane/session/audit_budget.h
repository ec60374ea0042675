// What a session may record while the spool is backlogged: past half full,
// each identity gets a budget of audit events (and bytes) per second that
// shrinks as the spool fills (the full audit.backlogged_session_rate at
// 50%, half of it at 70%, one event (512 bytes) from 90%), shared by all
// its sessions, and a session that spent it is not read until the budget
// covers what it recorded (rechecked at least every kMaxThrottle).
//
// - Below 90%, the fill past half weighs on an identity by its part of
//   the backlog: the bytes it recorded since the spool went past half
//   full, against the heaviest identity's. The heaviest pays the full
//   price; one that recorded a tenth as much feels a tenth of the fill
//   past half. So one flooding identity does not slow everyone else.
// - The last tenth is the reserve: there every identity pays the full
//   price, one event a second, whatever its part (red team: a second
//   identity, fresh and so weightless, filled the last tenth in a second).
// - Each event is priced when it is recorded, at the fill and weight of
//   that moment: what was recorded is never priced again as the spool
//   fills (a session next to a flood used to wait 9 s when the spool
//   crossed into the reserve, for events recorded at a larger budget).
// - A statement pays before it is read in: its bytes (a Query's or Parse's
//   length) count with what the identity recorded, at the fill it would
//   leave, so a large statement cannot jump into the reserve and pay
//   afterwards (red team: one 200 KB statement took the spool from 77% to
//   96%), and it waits until the whole price is paid: the longest pause is
//   kMaxThrottle at a time, but what is unpaid is not forgiven.
//
// The spool still fills, and then refuses everyone (53000), if the control
// plane stays away long enough for everyone's trickle to fill the reserve.
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

// Bytes per event of a budget (an event is a few hundred bytes), the
// longest a session stays unread before its budget is checked again, and
// the fill from which every identity pays the full price.
inline constexpr double kBudgetBytesPerEvent = 512;
inline constexpr absl::Duration kMaxThrottle = absl::Seconds(60);
inline constexpr double kReserveFill = 0.9;

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
  // Their price in seconds, each event priced when it was recorded.
  double cost ABSL_GUARDED_BY(mu) = 0;
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

// Counts one recorded event of `bytes` in `window`, priced at
// audit.backlogged_session_rate `rate` with the spool `fill` (0 to 1)
// full (up to half full, or without a rate, nothing is owed).
void CountAudit(AuditWindow& window, size_t bytes, int64_t rate, double fill,
                absl::Time now);

// The part of the backlog `window`'s identity recorded, against the
// heaviest identity's (0 to 1; 1 without a tally).
double BacklogWeight(AuditWindow& window);

// Whether a session of `window`'s identity must stop being read now, with
// audit.backlogged_session_rate `rate` (0: no limit), before a message
// that records about `next_bytes` (0: little or nothing) and would leave
// the spool `fill` (0 to 1) full: the time its budget is checked again, or
// nullopt. Below kReserveFill the fill past half counts as much as the
// identity's BacklogWeight. A window that is paid for (with `next_bytes`)
// starts afresh.
struct Throttle {
  absl::Time until;
  int64_t events = 0;  // what the window holds (for the log)
  int64_t bytes = 0;   // and the next message's
};
std::optional<Throttle> AuditThrottle(AuditWindow& window, int64_t rate,
                                      double fill, absl::Time now,
                                      size_t next_bytes = 0);

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_AUDIT_BUDGET_H_
