// API tokens for people and CI: created with scopes and an optional
// lifetime, stored only as a hash (through the ordered log), revocable, and
// checked on every RPC. The secret is shown once, at creation.
//
// Token format: "wdn_<id>_<secret>", 16 hex digits of id and 64 of secret
// (32 random bytes). The store keeps SHA-256(secret): with 256 bits of
// entropy a fast hash is enough, and a leaked store reveals no usable token.
#ifndef WARDEN_CONTROLPLANE_TOKENS_TOKENS_H_
#define WARDEN_CONTROLPLANE_TOKENS_TOKENS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "proto/warden/v1/control.pb.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::controlplane::tokens {

struct CreatedToken {
  std::string token;  // the bearer secret; never stored.
  warden::v1::TokenInfo info;
};

class Tokens {
 public:
  // Not owned; must outlive this.
  Tokens(state::StateMachine* state, const store::Store* store);

  // Create issues a token. `ttl` zero or negative: it never expires.
  // InvalidArgument without a name or a scope, or with an unspecified one.
  absl::StatusOr<CreatedToken> Create(
      const std::string& name, const std::vector<warden::v1::TokenScope>& scopes,
      absl::Duration ttl, const std::string& created_by, absl::Time now);

  // CreateBootstrap issues a one-time proxy:enroll token for a proxy of
  // `environment` (and, if not empty, with id `proxy_id`), expiring after
  // `ttl` (24 h when zero). `also_serves` names other environments the
  // proxy's listeners serve (kept in TokenInfo.environments; its
  // certificate will name them). InvalidArgument for bad names.
  absl::StatusOr<CreatedToken> CreateBootstrap(
      const std::string& name, const std::string& environment,
      const std::string& proxy_id, absl::Duration ttl,
      const std::string& created_by, absl::Time now,
      const std::vector<std::string>& also_serves = {});

  // CreateService issues a db:connect service token for an AI agent,
  // pipeline or service (`kind` agent or service) named `name` (the user
  // name it connects as), for `environments` (required) and `databases`
  // (empty: all), with `groups` for policies. InvalidArgument otherwise.
  absl::StatusOr<CreatedToken> CreateService(
      const std::string& name, const std::string& kind,
      const std::vector<std::string>& environments,
      const std::vector<std::string>& databases,
      const std::vector<std::string>& groups, absl::Duration ttl,
      const std::string& created_by, absl::Time now);

  // The active db:connect tokens as bundles carry them (hashes only), in a
  // stable order.
  absl::StatusOr<std::vector<warden::v1::ServiceToken>> ServiceTokens(
      absl::Time now) const;

  // Consume marks a single-use token used (through the log), exactly once
  // even under concurrent calls on several replicas: Unauthenticated if it
  // was used, revoked or expired by the time its entry is ordered.
  absl::Status Consume(const std::string& id, absl::Time now);

  // Authenticate checks a bearer token against the state as of the call
  // (StateMachine::Sync: what any replica committed before is seen).
  // Unauthenticated, with the reason (malformed, unknown, wrong secret,
  // revoked, expired, already used), otherwise; Unavailable when the
  // cluster's log cannot be read.
  absl::StatusOr<warden::v1::TokenInfo> Authenticate(absl::string_view token,
                                                     absl::Time now) const;

  // Revoke marks the token revoked from `now` on; idempotent. NotFound for
  // an unknown id.
  absl::StatusOr<warden::v1::TokenInfo> Revoke(const std::string& id,
                                               absl::Time now);

  // List returns tokens by creation time; revoked and expired ones only
  // with `include_inactive`.
  absl::StatusOr<std::vector<warden::v1::TokenInfo>> List(
      bool include_inactive, absl::Time now) const;

  // Whether `info` grants `scope`; admin grants every scope but
  // proxy:enroll and db:connect, which only bootstrap and service tokens
  // carry, and scim: the SCIM port faces the identity provider, and an
  // operator's token has no business there (nor would its changes read as
  // provisioning in the audit trail).
  static bool HasScope(const warden::v1::TokenInfo& info,
                       warden::v1::TokenScope scope);

 private:
  absl::StatusOr<warden::v1::TokenRecord> Load(const std::string& id) const;
  // Insert gives `record` a fresh id and secret and commits it.
  absl::StatusOr<CreatedToken> Insert(warden::v1::TokenRecord record);

  state::StateMachine* const state_;
  const store::Store* const store_;
};

}  // namespace warden::controlplane::tokens

#endif  // WARDEN_CONTROLPLANE_TOKENS_TOKENS_H_
