#include "controlplane/idp/keys.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/jwt.h"
#include "policy/lang/compile.h"

namespace warden::controlplane::idp {
absl::Status ResolveKeys(warden::v1::IdentityProviderSpec* idp,
                         const FetchOptions& options) {
  const std::string who = absl::StrCat("identity provider ", idp->name());
  std::string jwks_uri = idp->jwks_uri();
  if (jwks_uri.empty()) {
    auto discovery = Discover(idp->issuer(), options);
    if (!discovery.ok()) {
      return absl::Status(discovery.status().code(),
                          absl::StrCat(who, ": discovery: ",
                                       discovery.status().message()));
    }
    if (discovery->jwks_uri.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": discovery: the issuer's discovery document has no jwks_uri"));
    }
    jwks_uri = discovery->jwks_uri;
  }
  auto jwks = HttpsGet(jwks_uri, options);
  if (!jwks.ok()) {
    return absl::Status(jwks.status().code(),
                        absl::StrCat(who, ": keys: ", jwks.status().message()));
  }
  auto keys = jwt::KeySet::FromJwks(*jwks);
  if (!keys.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": ", jwks_uri, ": ", keys.status().message()));
  }
  idp->set_jwks_uri(jwks_uri);
  idp->set_jwks(*std::move(jwks));
  return absl::OkStatus();
}

absl::Status ResolveAll(warden::v1::PolicyBundle* bundle,
                        const FetchOptions& options) {
  for (auto& idp : *bundle->mutable_identity_providers()) {
    if (absl::Status s = ResolveKeys(&idp, options); !s.ok()) return s;
  }
  bundle->set_digest(policy::lang::ContentDigest(*bundle));
  return absl::OkStatus();
}

}  // namespace warden::controlplane::idp
