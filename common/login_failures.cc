#include "common/login_failures.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace warden {
namespace {

// Distinct user names a summary lists (the most tried), names counted per
// window, and bytes of each.
constexpr size_t kMaxUsers = 20;
constexpr size_t kMaxTrackedUsers = 32;
constexpr size_t kMaxUserBytes = 64;
// Addresses tracked at once (a spoofed-source flood of addresses must not
// grow this without bound): beyond it, the oldest windows end early.
constexpr size_t kMaxAddresses = 100000;

}  // namespace

void LoginFailures::Roll(const std::string& address, Window* w,
                         absl::Time now) {
  if (now - w->start < options_.window) return;
  const uint64_t recorded = w->recorded;
  if (w->failures > recorded || w->refused > 0) {
    Summary s;
    s.address = address;
    s.start = w->start;
    s.end = w->start + options_.window;
    s.failures = w->failures;
    s.recorded = recorded;
    s.refused = w->refused;
    std::vector<std::pair<std::string, uint64_t>> tried(w->users.begin(),
                                                        w->users.end());
    std::sort(tried.begin(), tried.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    for (size_t i = 0; i < tried.size() && i < kMaxUsers; ++i) {
      // Quoted and escaped: a name "root x500, mallory" must not read as
      // two entries with counts of its own (red team).
      s.users.push_back(absl::StrCat("\"", absl::CHexEscape(tried[i].first),
                                     "\" x", tried[i].second));
    }
    s.unlisted_users = tried.size() > kMaxUsers ? tried.size() - kMaxUsers : 0;
    s.counts_bounded = w->other_users > 0;
    s.environments.assign(w->environments.begin(), w->environments.end());
    ended_.push_back(std::move(s));
  }
  *w = Window{now};
}

bool LoginFailures::Failed(const std::string& address, const std::string& user,
                           absl::Time now, const std::string& environment,
                           bool may_record_each) {
  absl::MutexLock lock(&mu_);
  if (windows_.size() >= kMaxAddresses && !windows_.contains(address)) {
    // End every window early rather than forget counts.
    for (auto& [a, w] : windows_) {
      w.start = now - options_.window;
      Roll(a, &w, now);
    }
    windows_.clear();
  }
  auto [it, inserted] = windows_.try_emplace(address, Window{now});
  Window& w = it->second;
  Roll(address, &w, now);
  ++w.failures;
  if (!environment.empty() && w.environments.size() < kMaxTrackedUsers) {
    w.environments.insert(environment);
  }
  // Every failure counts toward the names tried, so that the most tried
  // lead the summary: an attacker cannot bury the account it is guessing
  // under names of its choosing (red team).
  const std::string name = user.substr(0, kMaxUserBytes);
  if (!name.empty()) {
    auto n = w.users.find(name);
    if (n != w.users.end()) {
      ++n->second;
    } else if (w.users.size() < kMaxTrackedUsers) {
      w.users.emplace(name, 1);
    } else {
      // Space-saving: the least tried name makes room, and the new one
      // inherits its count (an upper bound), so any name tried more than
      // failures / kMaxTrackedUsers times is sure to be kept.
      auto least = w.users.begin();
      for (auto it = w.users.begin(); it != w.users.end(); ++it) {
        if (it->second < least->second) least = it;
      }
      const uint64_t floor = least->second;
      w.users.erase(least);
      w.users.emplace(name, floor + 1);
      ++w.other_users;
    }
  }
  if (may_record_each &&
      w.recorded < static_cast<uint64_t>(options_.record_each)) {
    ++w.recorded;
    return true;
  }
  suppressed_.fetch_add(1);
  return false;
}

bool LoginFailures::Refuse(const std::string& address, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (options_.refuse_after <= 0) return false;
  auto it = windows_.find(address);
  if (it == windows_.end()) return false;
  Roll(address, &it->second, now);
  if (it->second.failures < static_cast<uint64_t>(options_.refuse_after)) {
    return false;
  }
  ++it->second.refused;
  refused_.fetch_add(1);
  return true;
}

std::vector<LoginFailures::Summary> LoginFailures::TakeSummaries(
    absl::Time now, bool all) {
  absl::MutexLock lock(&mu_);
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (all) it->second.start = now - options_.window;
    Roll(it->first, &it->second, now);
    // Quiet addresses are forgotten once their window ended.
    if (it->second.failures == 0 && it->second.refused == 0) {
      windows_.erase(it++);
    } else {
      ++it;
    }
  }
  return std::exchange(ended_, {});
}

LoginFailures::Summary LoginFailures::Combine(
    const std::vector<Summary>& summaries) {
  constexpr size_t kNamedAddresses = 5;
  constexpr size_t kNamedUsers = 10;
  std::vector<const Summary*> order;
  for (const Summary& s : summaries) order.push_back(&s);
  std::sort(order.begin(), order.end(), [](const Summary* a, const Summary* b) {
    return a->failures != b->failures ? a->failures > b->failures
                                      : a->address < b->address;
  });
  Summary out;
  std::vector<std::string> named;
  std::set<std::string> environments;
  for (const Summary* s : order) {
    if (named.empty()) {
      out.start = s->start;
      out.end = s->end;
    }
    out.start = std::min(out.start, s->start);
    out.end = std::max(out.end, s->end);
    out.failures += s->failures;
    out.recorded += s->recorded;
    out.refused += s->refused;
    if (named.size() < kNamedAddresses) named.push_back(s->address);
    for (const std::string& user : s->users) {
      if (out.users.size() < kNamedUsers) {
        out.users.push_back(user);
      } else {
        ++out.unlisted_users;
      }
    }
    out.unlisted_users += s->unlisted_users;
    out.counts_bounded = out.counts_bounded || s->counts_bounded;
    for (const std::string& e : s->environments) {
      if (environments.size() < kMaxTrackedUsers) environments.insert(e);
    }
  }
  out.address = absl::StrCat(
      summaries.size(), " addresses (", absl::StrJoin(named, ", "),
      summaries.size() > named.size() ? ", ..." : "", ")");
  out.environments.assign(environments.begin(), environments.end());
  return out;
}

std::string LoginFailures::Describe(const Summary& s) {
  return absl::StrCat(
      s.failures, " failed logins from ", s.address, " in ",
      absl::FormatDuration(s.end - s.start),
      s.environments.empty() ? ""
                             : absl::StrCat(" on ",
                                            absl::StrJoin(s.environments, ", ")),
      " (", s.recorded, " recorded one by one", s.refused > 0 ? ", " : "",
      s.refused > 0 ? absl::StrCat(s.refused, " connections refused") : "",
      s.users.empty() ? "" : "; users tried, most first: ",
      absl::StrJoin(s.users, ", "),
      s.unlisted_users > 0 ? absl::StrCat(", and ", s.unlisted_users, " more")
                           : "",
      s.counts_bounded
          ? " (more names than tracked: counts are upper bounds)"
          : "",
      ")");
}

}  // namespace warden
