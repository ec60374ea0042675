// What an identity provider's verified token says about who it names: the
// user claim, the groups claims, the claims the provider requires, and
// email_verified. One mapping, shared by the proxy (tokens sent as the
// password, dataplane/session) and warden-control (tokens traded for a
// client certificate by `wardenctl login`), so both read a token alike.
#ifndef WARDEN_COMMON_OIDC_CLAIMS_H_
#define WARDEN_COMMON_OIDC_CLAIMS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/jwt.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::oidc {

// How one provider's claims name the user.
struct ClaimRules {
  std::string provider;              // its name, for messages
  std::string user_claim = "email";  // the user name Warden records
  // Claims whose (string or list) values are the user's groups.
  std::vector<std::string> groups_claims = {"groups"};
  // Claims that must have exactly this value (Google Workspace: hd).
  std::vector<std::pair<std::string, std::string>> required_claims;
};

struct MappedIdentity {
  std::string user;
  std::vector<std::string> groups;  // in claim order, without duplicates
};

// MapClaims applies `rules` to a verified token's claims. PermissionDenied
// naming the claim when a required claim differs ("claim 'hd' is 'x', okta
// requires 'example.com'"), when the user claim is email and
// email_verified is false, or when the user claim is missing.
absl::StatusOr<MappedIdentity> MapClaims(const jwt::Claims& claims,
                                         const ClaimRules& rules);

// The rules and verification options a bundle's provider spec gives, with
// the documented defaults for empty fields.
ClaimRules ClaimRulesFromSpec(const warden::v1::IdentityProviderSpec& spec);
jwt::VerifyOptions VerifyOptionsFromSpec(
    const warden::v1::IdentityProviderSpec& spec);

}  // namespace warden::oidc

#endif  // WARDEN_COMMON_OIDC_CLAIMS_H_
