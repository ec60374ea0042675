// Failed logins per client address, so that a flood of them is recorded
// without flooding the audit trail, and slowed down (issue 14): the first
// `record_each` failures from one address in a window are recorded as
// usual, the rest are counted and recorded as one summary event when the
// window ends ("812 failed logins from 10.1.2.3 in 60 s, ..."), and once
// `refuse_after` failures came from an address in the current window its
// new connections are refused before authentication until the window ends.
// Nothing is lost: every failure is in an event or in a summary's count.
// Thread-safe (sessions of every worker share one).
#ifndef WARDEN_COMMON_LOGIN_FAILURES_H_
#define WARDEN_COMMON_LOGIN_FAILURES_H_

#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace warden {

class LoginFailures {
 public:
  struct Options {
    absl::Duration window = absl::Seconds(60);
    int record_each = 20;    // recorded one by one per address and window
    int refuse_after = 100;  // 0: never refuse
  };
  // One address's window that had failures not recorded one by one, or
  // refused connections.
  struct Summary {
    std::string address;
    absl::Time start, end;
    uint64_t failures = 0;    // all of them, recorded or not
    uint64_t recorded = 0;    // recorded one by one
    uint64_t refused = 0;     // connections refused before authentication
    // The user names tried most, as "\"name\" xN" (quoted and escaped:
    // a name is the attacker's text), most first (capped).
    std::vector<std::string> users;
    size_t unlisted_users = 0;  // names tried beyond the listed ones
    bool counts_bounded = false;  // names were evicted: counts are bounds
    // Where the failures were (the environments of the listeners), sorted.
    std::vector<std::string> environments;
  };

  // Several addresses' summaries as one (while the audit spool is
  // backlogged, one event instead of one per address): the counts summed,
  // the addresses with the most failures named (the rest counted), their
  // most tried names first.
  static Summary Combine(const std::vector<Summary>& summaries);

  LoginFailures() = default;
  explicit LoginFailures(Options options) : options_(options) {}
  void set_options(Options options) {
    absl::MutexLock lock(&mu_);
    options_ = options;
  }

  // A login from `address` failed (claiming `user`): true when it is to be
  // recorded one by one, false when it only counts toward the summary
  // (always, when `may_record_each` is false: the audit spool is
  // backlogged, and failures from many addresses could fill it).
  bool Failed(const std::string& address, const std::string& user,
              absl::Time now, const std::string& environment = "",
              bool may_record_each = true);
  // Whether a new connection from `address` is refused now (counted).
  bool Refuse(const std::string& address, absl::Time now);
  // The summaries of windows that ended by `now` (and, with `all`, of the
  // current ones too: at shutdown), for the caller to record.
  std::vector<Summary> TakeSummaries(absl::Time now, bool all = false);

  uint64_t suppressed_total() const { return suppressed_.load(); }
  uint64_t refused_total() const { return refused_.load(); }

  // "812 failed logins from 10.1.2.3 in 60 s (20 recorded one by one,
  // 790 connections refused; users tried, most first: "a" x700, "b" x3,
  // and 4 more)".
  static std::string Describe(const Summary& s);

 private:
  struct Window {
    absl::Time start;
    uint64_t failures = 0;
    uint64_t recorded = 0;  // of the failures, recorded one by one
    uint64_t refused = 0;
    absl::flat_hash_map<std::string, uint64_t> users;  // name -> failures
    uint64_t other_users = 0;  // failures under names beyond the cap
    std::set<std::string> environments;  // capped like the names
  };
  // Ends `w` if its window is over (its summary, if any, goes to ended_).
  void Roll(const std::string& address, Window* w, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  Options options_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Window> windows_ ABSL_GUARDED_BY(mu_);
  std::vector<Summary> ended_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> suppressed_{0};
  std::atomic<uint64_t> refused_{0};
};

}  // namespace warden

#endif  // WARDEN_COMMON_LOGIN_FAILURES_H_
