#include "controlplane/tokens/tokens.h"

#include <algorithm>

#include "common/proto_time.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/proxy_identity.h"
#include "common/warden_token.h"

namespace warden::controlplane::tokens {
namespace {

using warden::v1::TokenInfo;
using warden::v1::TokenRecord;

constexpr size_t kIdBytes = 8;
constexpr size_t kSecretBytes = 32;

bool Active(const TokenInfo& info, absl::Time now) {
  if (info.has_revoked_at() || info.has_used_at()) return false;
  return !info.has_expires_at() || FromTimestamp(info.expires_at()) > now;
}

}  // namespace

Tokens::Tokens(state::StateMachine* state, const store::Store* store)
    : state_(state), store_(store) {}

absl::StatusOr<CreatedToken> Tokens::Create(
    const std::string& name,
    const std::vector<warden::v1::TokenScope>& scopes, absl::Duration ttl,
    const std::string& created_by, absl::Time now) {
  if (name.empty()) return absl::InvalidArgumentError("a token needs a name");
  if (scopes.empty()) {
    return absl::InvalidArgumentError("a token needs at least one scope");
  }
  for (auto s : scopes) {
    if (s == warden::v1::TOKEN_SCOPE_UNSPECIFIED ||
        !warden::v1::TokenScope_IsValid(s)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown token scope ", static_cast<int>(s)));
    }
    if (s == warden::v1::TOKEN_SCOPE_PROXY_ENROLL) {
      return absl::InvalidArgumentError(
          "proxy:enroll is the scope of one-time bootstrap tokens; create "
          "them with an environment (wardenctl proxies bootstrap-token) and "
          "no other scope");
    }
    if (s == warden::v1::TOKEN_SCOPE_DATABASE_CONNECT) {
      return absl::InvalidArgumentError(
          "db:connect is the scope of service tokens; create them with a "
          "kind and environments, and no other scope");
    }
  }
  TokenRecord record;
  TokenInfo* info = record.mutable_info();
  info->set_name(name);
  for (auto s : scopes) info->add_scopes(s);
  SetTimestamp(now, info->mutable_created_at());
  if (ttl > absl::ZeroDuration()) SetTimestamp(now + ttl, info->mutable_expires_at());
  info->set_created_by(created_by);
  return Insert(std::move(record));
}

absl::StatusOr<CreatedToken> Tokens::CreateBootstrap(
    const std::string& name, const std::string& environment,
    const std::string& proxy_id, absl::Duration ttl,
    const std::string& created_by, absl::Time now,
    const std::vector<std::string>& also_serves) {
  if (name.empty()) return absl::InvalidArgumentError("a token needs a name");
  std::vector<std::string> serves;
  for (const std::string& env : also_serves) {
    if (env == environment ||
        std::find(serves.begin(), serves.end(), env) != serves.end()) {
      continue;
    }
    serves.push_back(env);
  }
  if (serves.size() > 32) {
    return absl::InvalidArgumentError(
        "a proxy serves at most 33 environments");
  }
  for (const std::string& env : [&] {
         std::vector<std::string> all = {environment};
         all.insert(all.end(), serves.begin(), serves.end());
         return all;
       }()) {
    if (auto s = ValidateProxyName("environment", env); !s.ok()) return s;
    if (auto s = CheckNotReserved("environment", env); !s.ok()) return s;
  }
  if (!proxy_id.empty()) {
    if (auto s = ValidateProxyName("proxy id", proxy_id); !s.ok()) return s;
    if (auto s = CheckNotReserved("proxy id", proxy_id); !s.ok()) return s;
  }
  if (ttl <= absl::ZeroDuration()) ttl = absl::Hours(24);
  TokenRecord record;
  TokenInfo* info = record.mutable_info();
  info->set_name(name);
  info->add_scopes(warden::v1::TOKEN_SCOPE_PROXY_ENROLL);
  SetTimestamp(now, info->mutable_created_at());
  SetTimestamp(now + ttl, info->mutable_expires_at());
  info->set_created_by(created_by);
  info->set_environment(environment);
  for (const std::string& env : serves) info->add_environments(env);
  info->set_proxy_id(proxy_id);
  info->set_single_use(true);
  return Insert(std::move(record));
}

absl::StatusOr<CreatedToken> Tokens::CreateService(
    const std::string& name, const std::string& kind,
    const std::vector<std::string>& environments,
    const std::vector<std::string>& databases,
    const std::vector<std::string>& groups, absl::Duration ttl,
    const std::string& created_by, absl::Time now) {
  // The name is the user name the agent connects as: the same rules as a
  // proxy's names keep it printable and unambiguous in the audit trail.
  if (auto s = ValidateProxyName("service token name", name); !s.ok()) {
    return s;
  }
  if (kind != "agent" && kind != "service") {
    return absl::InvalidArgumentError(
        absl::StrCat("a service token's kind is agent or service, not '",
                     kind, "'"));
  }
  if (environments.empty()) {
    return absl::InvalidArgumentError(
        "a service token names the environments it may connect to");
  }
  for (const auto& e : environments) {
    if (auto s = ValidateProxyName("environment", e); !s.ok()) return s;
  }
  for (const auto& d : databases) {
    if (d.empty()) return absl::InvalidArgumentError("empty database name");
  }
  TokenRecord record;
  TokenInfo* info = record.mutable_info();
  info->set_name(name);
  info->add_scopes(warden::v1::TOKEN_SCOPE_DATABASE_CONNECT);
  SetTimestamp(now, info->mutable_created_at());
  if (ttl > absl::ZeroDuration()) SetTimestamp(now + ttl, info->mutable_expires_at());
  info->set_created_by(created_by);
  info->set_kind(kind);
  for (const auto& e : environments) info->add_environments(e);
  for (const auto& d : databases) info->add_databases(d);
  for (const auto& g : groups) info->add_groups(g);
  return Insert(std::move(record));
}

absl::StatusOr<std::vector<warden::v1::ServiceToken>> Tokens::ServiceTokens(
    absl::Time now) const {
  auto rows = store_->Scan(store::Column::kTokens, state::kTokenPrefix);
  if (!rows.ok()) return rows.status();
  std::vector<warden::v1::ServiceToken> out;
  for (const auto& row : *rows) {
    TokenRecord record;
    if (!record.ParseFromString(row.value)) {
      return absl::DataLossError(absl::StrCat(row.key, " does not parse"));
    }
    const TokenInfo& info = record.info();
    if (!Active(info, now) ||
        std::find(info.scopes().begin(), info.scopes().end(),
                  warden::v1::TOKEN_SCOPE_DATABASE_CONNECT) ==
            info.scopes().end()) {
      continue;
    }
    warden::v1::ServiceToken t;
    t.set_id(info.id());
    t.set_name(info.name());
    t.set_secret_sha256(record.secret_sha256());
    t.set_kind(info.kind());
    *t.mutable_environments() = info.environments();
    *t.mutable_databases() = info.databases();
    *t.mutable_groups() = info.groups();
    if (info.has_expires_at()) t.set_expires_at_unix(info.expires_at().seconds());
    out.push_back(std::move(t));
  }
  // Scan order is key order (by id): deterministic, so an unchanged set
  // gives an unchanged bundle digest.
  return out;
}

absl::StatusOr<CreatedToken> Tokens::Insert(TokenRecord record) {
  auto id_bytes = crypto::RandomBytes(kIdBytes);
  auto secret_bytes = crypto::RandomBytes(kSecretBytes);
  if (!id_bytes.ok()) return id_bytes.status();
  if (!secret_bytes.ok()) return secret_bytes.status();
  const std::string secret = crypto::HexEncode(*secret_bytes);

  TokenInfo* info = record.mutable_info();
  info->set_id(absl::StrCat("tok_", crypto::HexEncode(*id_bytes)));
  record.set_secret_sha256(WardenTokenSecretHash(secret));

  warden::v1::LogEntry entry;
  *entry.mutable_put_token() = record;
  auto index = state_->Commit(entry);
  if (!index.ok()) return index.status();
  return CreatedToken{FormatWardenToken(info->id(), secret), *info};
}

absl::StatusOr<TokenRecord> Tokens::Load(const std::string& id) const {
  auto bytes =
      store_->Get(store::Column::kTokens, absl::StrCat(state::kTokenPrefix, id));
  if (!bytes.ok()) return bytes.status();
  TokenRecord record;
  if (!record.ParseFromString(*bytes)) {
    return absl::DataLossError(absl::StrCat("token ", id, " does not parse"));
  }
  return record;
}

absl::StatusOr<TokenInfo> Tokens::Authenticate(absl::string_view token,
                                               absl::Time now) const {
  auto parsed = ParseWardenToken(token);
  if (!parsed.ok()) return absl::UnauthenticatedError(parsed.status().message());
  const std::string& id = parsed->id;
  // Current as of this call cluster-wide: a token revoked on any replica
  // is refused here once its revocation returned (in a cluster, a read of
  // where etcd's log ends; free on a single node). If that cannot be
  // confirmed, no token is accepted.
  if (absl::Status s = state_->Sync(); !s.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "cannot check the token against the cluster's latest state: ",
        s.message()));
  }
  auto record = Load(id);
  if (absl::IsNotFound(record.status())) {
    return absl::UnauthenticatedError(absl::StrCat("unknown token ", id));
  }
  if (!record.ok()) return record.status();
  const std::string presented = WardenTokenSecretHash(parsed->secret);
  if (!crypto::ConstantTimeEquals(presented, record->secret_sha256())) {
    return absl::UnauthenticatedError(
        absl::StrCat("wrong secret for token ", id));
  }
  const TokenInfo& info = record->info();
  if (info.has_revoked_at()) {
    return absl::UnauthenticatedError(
        absl::StrCat("token ", id, " (", info.name(), ") was revoked"));
  }
  if (info.has_expires_at() && FromTimestamp(info.expires_at()) <= now) {
    return absl::UnauthenticatedError(
        absl::StrCat("token ", id, " (", info.name(), ") has expired"));
  }
  if (info.has_used_at()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "token ", id, " (", info.name(), ") was used already; bootstrap "
        "tokens work once"));
  }
  return info;
}

absl::Status Tokens::Consume(const std::string& id, absl::Time now) {
  // Decided against the whole log, not this replica's view of it: the
  // check runs where the entry gets its index (CommitAt), and if another
  // replica appended first (it may have spent or revoked this very token)
  // it runs again on the state that includes that append. Two replicas
  // given the same bootstrap token at once: one enrolls, one is refused.
  auto index = state_->CommitAt(
      [&](uint64_t) -> absl::StatusOr<warden::v1::LogEntry> {
        auto record = Load(id);
        if (absl::IsNotFound(record.status())) {
          return absl::UnauthenticatedError(absl::StrCat("unknown token ", id));
        }
        if (!record.ok()) return record.status();
        const TokenInfo& info = record->info();
        if (info.has_used_at()) {
          return absl::UnauthenticatedError(absl::StrCat(
              "token ", id, " (", info.name(), ") was used already; "
              "bootstrap tokens work once"));
        }
        if (info.has_revoked_at()) {
          return absl::UnauthenticatedError(
              absl::StrCat("token ", id, " (", info.name(), ") was revoked"));
        }
        if (info.has_expires_at() && FromTimestamp(info.expires_at()) <= now) {
          return absl::UnauthenticatedError(
              absl::StrCat("token ", id, " (", info.name(), ") has expired"));
        }
        SetTimestamp(now, record->mutable_info()->mutable_used_at());
        warden::v1::LogEntry entry;
        *entry.mutable_put_token() = *std::move(record);
        return entry;
      });
  return index.ok() ? absl::OkStatus() : index.status();
}

absl::StatusOr<TokenInfo> Tokens::Revoke(const std::string& id,
                                         absl::Time now) {
  // A read-modify-write of the whole record, so decided where the entry
  // gets its index (as Consume): a revocation racing a consumption on
  // another replica keeps both marks instead of the later write erasing
  // the earlier one (an un-spent bootstrap token, or an un-revoked one).
  TokenInfo result;
  bool changed = false;
  auto index = state_->CommitAt(
      [&](uint64_t) -> absl::StatusOr<warden::v1::LogEntry> {
        auto record = Load(id);
        if (absl::IsNotFound(record.status())) {
          return absl::NotFoundError(absl::StrCat("no token ", id));
        }
        if (!record.ok()) return record.status();
        result = record->info();
        changed = !record->info().has_revoked_at();
        if (!changed) {
          // Idempotent: nothing to write. Cancelled tells CommitAt to
          // append nothing; it is not the caller's answer.
          return absl::CancelledError("already revoked");
        }
        SetTimestamp(now, record->mutable_info()->mutable_revoked_at());
        result = record->info();
        warden::v1::LogEntry entry;
        *entry.mutable_put_token() = *std::move(record);
        return entry;
      });
  if (!changed && !index.ok() && absl::IsCancelled(index.status())) {
    return result;
  }
  if (!index.ok()) return index.status();
  return result;
}

absl::StatusOr<std::vector<TokenInfo>> Tokens::List(bool include_inactive,
                                                    absl::Time now) const {
  auto rows = store_->Scan(store::Column::kTokens, state::kTokenPrefix);
  if (!rows.ok()) return rows.status();
  std::vector<TokenInfo> out;
  for (const auto& row : *rows) {
    TokenRecord record;
    if (!record.ParseFromString(row.value)) {
      return absl::DataLossError(absl::StrCat(row.key, " does not parse"));
    }
    if (include_inactive || Active(record.info(), now)) {
      out.push_back(record.info());
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const TokenInfo& a, const TokenInfo& b) {
                     return FromTimestamp(a.created_at()) < FromTimestamp(b.created_at());
                   });
  return out;
}

bool Tokens::HasScope(const TokenInfo& info, warden::v1::TokenScope scope) {
  for (int s : info.scopes()) {
    if (s == scope) return true;
    if (s == warden::v1::TOKEN_SCOPE_ADMIN &&
        scope != warden::v1::TOKEN_SCOPE_PROXY_ENROLL &&
        scope != warden::v1::TOKEN_SCOPE_DATABASE_CONNECT &&
        scope != warden::v1::TOKEN_SCOPE_SCIM) {
      return true;
    }
  }
  return false;
}

}  // namespace warden::controlplane::tokens
