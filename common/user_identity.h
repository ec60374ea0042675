// How a person is named in the client certificate Warden's CA issues them
// (`wardenctl login`), shared by the CA (controlplane/ca) and the proxy that
// accepts it (dataplane/session's CertAuthenticator): CN = user, and URI
// SANs
//   spiffe://warden/user/<user>
//   spiffe://warden/group/<group>     (one per group)
//   spiffe://warden/idp/<provider>    (the provider whose token proved it)
//   spiffe://warden/kind/<kind>       (human, agent or service: the kind
//                                      that provider's tokens give)
// with each name percent-encoded (every byte but A-Z a-z 0-9 - . _ ~), so
// "alice@example.com" is spiffe://warden/user/alice%40example.com.
//
// The kind is what policies match with `identity: { kind: agent }`; a
// certificate must say it, so that an agent that logs in with
// `wardenctl login` stays an agent. Certificates issued before the kind URI
// existed have none and are refused (FailedPrecondition below), never read
// as human.
#ifndef WARDEN_COMMON_USER_IDENTITY_H_
#define WARDEN_COMMON_USER_IDENTITY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden {

struct UserIdentity {
  std::string user;
  std::vector<std::string> groups;
  std::string provider;
  // "human", "agent" or "service" (IsIdentityKind). Required to issue and
  // always set by UserIdentityFromUris.
  std::string kind;
};

// Whether `kind` is one of the identity kinds: "human", "agent", "service".
bool IsIdentityKind(absl::string_view kind);

// The URI SANs naming `identity`: user first, then groups, provider and,
// when set, kind.
std::vector<std::string> UserUris(const UserIdentity& identity);

// The identity the user URIs among `uris` name (other URIs are ignored).
// NotFound without a user URI; InvalidArgument for a malformed or repeated
// user, provider or kind URI, a bad percent-encoding, an unknown kind, or no
// provider URI; FailedPrecondition ("certificate from an older
// warden-control carries no identity kind; run `wardenctl login` again")
// when user and provider are there but no kind is.
absl::StatusOr<UserIdentity> UserIdentityFromUris(
    const std::vector<std::string>& uris);

// Percent-encoding of one path segment as above, and its strict inverse
// (InvalidArgument for a stray '%' or an empty result).
std::string PercentEncode(absl::string_view text);
absl::StatusOr<std::string> PercentDecode(absl::string_view text);

}  // namespace warden

#endif  // WARDEN_COMMON_USER_IDENTITY_H_
