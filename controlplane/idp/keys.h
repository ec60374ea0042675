// Identity providers' keys for policy bundles: warden-control fetches each
// provider's JSON Web Key Set over HTTPS (libcurl, certificate verified)
// when a bundle is pushed and again periodically, so proxies verify tokens
// with keys that arrive, signed, in their bundles and need no route to the
// provider. Discovery follows OpenID Connect Discovery 1.0: the document at
// ISSUER/.well-known/openid-configuration must name the same issuer and an
// https jwks_uri.
#ifndef WARDEN_CONTROLPLANE_IDP_KEYS_H_
#define WARDEN_CONTROLPLANE_IDP_KEYS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controlplane/idp/oidc_client.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::controlplane::idp {

// Sets idp->jwks (and, from discovery, jwks_uri when the spec gave none)
// to what the provider serves now. The key set must hold at least one key
// Warden can use (common/jwt). Errors name the provider.
absl::Status ResolveKeys(warden::v1::IdentityProviderSpec* idp,
                         const FetchOptions& options);

// ResolveKeys for every provider of `bundle`; then re-digests it.
absl::Status ResolveAll(warden::v1::PolicyBundle* bundle,
                        const FetchOptions& options);

}  // namespace warden::controlplane::idp

#endif  // WARDEN_CONTROLPLANE_IDP_KEYS_H_
