#include "controlplane/proxies/registry.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace warden::controlplane::proxies {
namespace {

int64_t Ms(absl::Time t) { return absl::ToUnixMillis(t); }

std::string When(int64_t ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

}  // namespace

Registry::Registry(state::StateMachine* state, const store::Store* store,
                   HistoryFn has_history)
    : state_(state), store_(store), has_history_(std::move(has_history)) {}

std::string Registry::Key(const std::string& environment,
                          const std::string& proxy_id) {
  return absl::StrCat(state::kProxyPrefix, environment, "/", proxy_id);
}

absl::StatusOr<warden::v1::ProxyRecord> Registry::Load(
    const std::string& environment, const std::string& proxy_id) const {
  auto bytes = store_->Get(store::Column::kTokens, Key(environment, proxy_id));
  if (!bytes.ok()) return bytes.status();
  warden::v1::ProxyRecord record;
  if (!record.ParseFromString(*bytes)) {
    return absl::DataLossError(absl::StrCat("proxy record ", environment, "/",
                                            proxy_id, " does not parse"));
  }
  return record;
}

absl::Status Registry::Decide(
    const std::function<
        absl::StatusOr<std::optional<warden::v1::ProxyRecord>>()>& decide) {
  // In CommitAt: `decide` reads the records after this replica applied
  // everything before the entry's index, and runs again if another
  // replica appended first. A record is only ever replaced by one made
  // from the latest (a revocation on one replica and a renewal on another
  // cannot erase each other; one id cannot be enrolled on two replicas).
  bool unchanged = false;
  auto index =
      state_->CommitAt([&](uint64_t) -> absl::StatusOr<warden::v1::LogEntry> {
        unchanged = false;
        auto next = decide();
        if (!next.ok()) return next.status();
        if (!next->has_value()) {
          unchanged = true;
          return absl::CancelledError("nothing to write");
        }
        warden::v1::LogEntry entry;
        *entry.mutable_put_proxy() = **std::move(next);
        return entry;
      });
  if (unchanged) return absl::OkStatus();
  return index.status();
}

absl::Status Registry::Free(const ProxyIdentity& identity) const {
  const std::string name =
      absl::StrCat(identity.environment, "/", identity.proxy_id);
  auto existing = Load(identity.environment, identity.proxy_id);
  if (existing.ok() && !existing->revoked()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "proxy ", name, " is already enrolled (since ",
        When(existing->enrolled_unix_ms()), ", by ", existing->enrolled_by(),
        "): enroll under another id, or revoke it first (wardenctl proxies "
        "revoke ",
        name, " --reason ...) if it is to be replaced"));
  }
  if (!existing.ok() && !absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  // One proxy id is one proxy, whatever environments it serves: the same
  // id (in any case) enrolled in a second environment would put two
  // proxies under one name in every audit event (red team).
  auto all = List();
  if (!all.ok()) return all.status();
  for (const auto& other : *all) {
    if (other.revoked() ||
        LookAlikeKey(other.proxy_id()) != LookAlikeKey(identity.proxy_id) ||
        (other.environment() == identity.environment &&
         other.proxy_id() == identity.proxy_id)) {
      continue;
    }
    return absl::AlreadyExistsError(absl::StrCat(
        "proxy id ", identity.proxy_id, " is taken: ", other.environment(), "/",
        other.proxy_id(), " is enrolled (since ",
        When(other.enrolled_unix_ms()), ", by ", other.enrolled_by(),
        "); a proxy id names one proxy in every environment, whatever its "
        "case or trailing '.', '_' or '-'"));
  }
  return absl::OkStatus();
}

absl::Status Registry::Enroll(
    const ProxyIdentity& identity, const std::string& actor, absl::Time now,
    const std::function<absl::StatusOr<std::string>()>& issue) {
  absl::MutexLock lock(&mu_);
  const std::string name =
      absl::StrCat(identity.environment, "/", identity.proxy_id);
  // Checked before the token is spent (a refusal costs nothing), and
  // again where the record is written (another replica may have enrolled
  // the id in between: then this token is spent and the id stays theirs).
  if (absl::Status s = Free(identity); !s.ok()) return s;
  auto existing = Load(identity.environment, identity.proxy_id);
  if (absl::IsNotFound(existing.status()) && has_history_) {
    auto used = has_history_(identity.environment, identity.proxy_id);
    if (!used.ok()) return used.status();
    if (*used) {
      return absl::AlreadyExistsError(absl::StrCat(
          "proxy ", name,
          " is already in use (it has audit events or fleet "
          "status from before enrollments were recorded): enroll under "
          "another id"));
    }
  }
  auto serial = issue();
  if (!serial.ok()) return serial.status();
  warden::v1::ProxyRecord record;
  record.set_environment(identity.environment);
  record.set_proxy_id(identity.proxy_id);
  record.set_certificate_serial(*serial);
  record.set_enrolled_unix_ms(Ms(now));
  record.set_enrolled_by(actor);
  return Decide(
      [&]() -> absl::StatusOr<std::optional<warden::v1::ProxyRecord>> {
        if (absl::Status s = Free(identity); !s.ok()) return s;
        return record;
      });
}

absl::Status Registry::Renewed(const ProxyIdentity& identity,
                               const std::string& new_serial, absl::Time now) {
  absl::MutexLock lock(&mu_);
  return Decide(
      [&]() -> absl::StatusOr<std::optional<warden::v1::ProxyRecord>> {
        auto record = Load(identity.environment, identity.proxy_id);
        warden::v1::ProxyRecord next;
        if (absl::IsNotFound(record.status())) {
          // Enrolled before the registry: bound from its first renewal on.
          next.set_environment(identity.environment);
          next.set_proxy_id(identity.proxy_id);
          next.set_enrolled_by("before enrollments were recorded");
        } else if (!record.ok()) {
          return record.status();
        } else {
          next = *std::move(record);
          if (next.revoked()) {
            return absl::PermissionDeniedError(
                absl::StrCat("proxy ", identity.environment, "/",
                             identity.proxy_id, " was revoked"));
          }
          // Only the current certificate renews. The one it replaced is still
          // accepted on the stream and for appends until it expires, but a
          // renewal from it would fork the proxy: a stale copy of its state
          // directory took the id over and locked the live proxy out (red
          // team). The exception: a retry right after a renewal whose answer
          // the proxy never stored (it crashed), within kRenewRetryWindow.
          if (!next.certificate_serial().empty() &&
              identity.certificate_serial != next.certificate_serial()) {
            const bool retry =
                identity.certificate_serial == next.previous_serial() &&
                now - absl::FromUnixMillis(next.renewed_unix_ms()) <=
                    kRenewRetryWindow;
            // Once the proxy has used the new certificate, a retry can only
            // come from a copy of the old state directory (red team: it took
            // the id over within the window).
            if (!retry || next.current_used()) {
              return absl::PermissionDeniedError(absl::StrCat(
                  "certificate ", identity.certificate_serial, " of proxy ",
                  identity.environment, "/", identity.proxy_id,
                  " was already renewed (", When(next.renewed_unix_ms()),
                  ", to certificate ", next.certificate_serial(),
                  next.current_used() ? ", which the proxy has used since" : "",
                  "); only the current certificate renews (a copy of an old "
                  "state directory must not take the proxy over)"));
            }
          }
        }
        next.set_previous_serial(identity.certificate_serial);
        next.set_certificate_serial(new_serial);
        next.set_current_used(false);
        next.set_renewed_unix_ms(Ms(now));
        next.set_renewals(next.renewals() + 1);
        return next;
      });
}

absl::StatusOr<warden::v1::ProxyRecord> Registry::Revoke(
    const std::string& environment, const std::string& proxy_id,
    const std::string& actor, const std::string& reason, absl::Time now) {
  absl::MutexLock lock(&mu_);
  // Enrolled before the registry (no record, but a history): the
  // revocation is recorded all the same. Asked before the decision: the
  // history is not part of the records Decide reads.
  bool had_history = false;
  if (absl::IsNotFound(Load(environment, proxy_id).status()) && has_history_) {
    auto used = has_history_(environment, proxy_id);
    if (!used.ok()) return used.status();
    had_history = *used;
  }
  warden::v1::ProxyRecord result;
  const absl::Status decided =
      Decide([&]() -> absl::StatusOr<std::optional<warden::v1::ProxyRecord>> {
        auto record = Load(environment, proxy_id);
        if (absl::IsNotFound(record.status())) {
          if (has_history_ && !had_history) {
            return absl::NotFoundError(absl::StrCat(
                "no proxy ", environment, "/", proxy_id,
                " (wardenctl proxies list shows the enrolled ones)"));
          }
          warden::v1::ProxyRecord fresh;
          fresh.set_environment(environment);
          fresh.set_proxy_id(proxy_id);
          fresh.set_enrolled_by("before enrollments were recorded");
          record = std::move(fresh);
        } else if (!record.ok()) {
          return record.status();
        }
        result = *record;
        if (record->revoked()) return std::nullopt;
        record->set_revoked(true);
        record->set_revoked_unix_ms(Ms(now));
        record->set_revoked_by(actor);
        record->set_revoke_reason(reason);
        result = *record;
        return *std::move(record);
      });
  if (!decided.ok()) return decided;
  return result;
}

absl::Status Registry::Check(const ProxyIdentity& identity) {
  auto record = Load(identity.environment, identity.proxy_id);
  if (absl::IsNotFound(record.status())) return absl::OkStatus();
  if (!record.ok()) return record.status();
  const std::string name =
      absl::StrCat(identity.environment, "/", identity.proxy_id);
  if (record->revoked()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "proxy ", name, " was revoked at ", When(record->revoked_unix_ms()),
        " by ", record->revoked_by(), ": ", record->revoke_reason()));
  }
  if (record->certificate_serial().empty()) return absl::OkStatus();
  if (identity.certificate_serial == record->certificate_serial()) {
    if (!record->current_used()) {
      // Once per renewal: from now on the replaced certificate cannot
      // renew (Renewed). Read again under the lock, so a renewal in
      // between is not undone.
      absl::MutexLock lock(&mu_);
      const absl::Status marked = Decide(
          [&]() -> absl::StatusOr<std::optional<warden::v1::ProxyRecord>> {
            auto fresh = Load(identity.environment, identity.proxy_id);
            if (!fresh.ok() ||
                fresh->certificate_serial() != identity.certificate_serial ||
                fresh->current_used() || fresh->revoked()) {
              return std::nullopt;
            }
            fresh->set_current_used(true);
            return *std::move(fresh);
          });
      if (!marked.ok()) return marked;
    }
    return absl::OkStatus();
  }
  if ((!record->previous_serial().empty() &&
       identity.certificate_serial == record->previous_serial())) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "certificate ", identity.certificate_serial, " no longer speaks for ",
      name, ": the proxy id is bound to certificate ",
      record->certificate_serial(), " (enrolled or renewed since)"));
}

absl::StatusOr<std::vector<warden::v1::ProxyRecord>> Registry::List() const {
  auto rows = store_->Scan(store::Column::kTokens, state::kProxyPrefix);
  if (!rows.ok()) return rows.status();
  std::vector<warden::v1::ProxyRecord> out;
  for (const auto& row : *rows) {
    warden::v1::ProxyRecord record;
    if (!record.ParseFromString(row.value)) {
      return absl::DataLossError(
          absl::StrCat("proxy record ", row.key, " does not parse"));
    }
    out.push_back(std::move(record));
  }
  return out;
}

}  // namespace warden::controlplane::proxies
