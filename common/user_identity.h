// How a person is named in the client certificate Warden's CA issues them
// (`wardenctl login`), shared by the CA (controlplane/ca) and the proxy that
// accepts it (dataplane/session's CertAuthenticator): CN = user, and URI
// SANs
//   spiffe://warden/user/<user>
//   spiffe://warden/group/<group>     (one per group)
//   spiffe://warden/idp/<provider>    (the provider whose token proved it)
// with each name percent-encoded (every byte but A-Z a-z 0-9 - . _ ~), so
// "alice@example.com" is spiffe://warden/user/alice%40example.com.
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
};

// The URI SANs naming `identity`, user first, then groups, then provider.
std::vector<std::string> UserUris(const UserIdentity& identity);

// The identity the user URIs among `uris` name (other URIs are ignored).
// NotFound without a user URI; InvalidArgument for a malformed or repeated
// user or provider URI, a bad percent-encoding, or no provider URI.
absl::StatusOr<UserIdentity> UserIdentityFromUris(
    const std::vector<std::string>& uris);

// Percent-encoding of one path segment as above, and its strict inverse
// (InvalidArgument for a stray '%' or an empty result).
std::string PercentEncode(absl::string_view text);
absl::StatusOr<std::string> PercentDecode(absl::string_view text);

}  // namespace warden

#endif  // WARDEN_COMMON_USER_IDENTITY_H_
