// The HTTPS side of OpenID Connect that Warden's control-plane tools need,
// over libcurl: https only (redirects too), certificate and host verified,
// bounded size and time. warden-control fetches providers' discovery
// documents and key sets with it (keys.h); `wardenctl login` runs the
// OAuth 2.0 device authorization grant (RFC 8628) with it to get a user's
// ID token.
#ifndef WARDEN_CONTROLPLANE_IDP_OIDC_CLIENT_H_
#define WARDEN_CONTROLPLANE_IDP_OIDC_CLIENT_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace warden::controlplane::idp {

struct FetchOptions {
  // PEM CA bundle to verify providers with; empty: the system's.
  std::string ca_file;
  absl::Duration timeout = absl::Seconds(10);
  size_t max_bytes = 1u << 20;
  std::string user_agent = "warden-control";
};

// GET over https only (redirects too), certificate and host verified.
// Errors name the URL and what failed (connect, TLS, HTTP status, size).
absl::StatusOr<std::string> HttpsGet(const std::string& url,
                                     const FetchOptions& options);

// An HTTP answer whatever its status (OAuth endpoints answer errors with
// 400 and a JSON body).
struct HttpResponse {
  long status = 0;
  std::string body;
};

// POST of an application/x-www-form-urlencoded body (values are encoded
// here), https only, no redirects. Errors only when no answer came.
absl::StatusOr<HttpResponse> HttpsPostForm(
    const std::string& url,
    const std::vector<std::pair<std::string, std::string>>& form,
    const FetchOptions& options);

// What a provider's discovery document (ISSUER/.well-known/
// openid-configuration) says; the document must name `issuer` exactly.
// Endpoints it does not list are empty.
struct Discovery {
  std::string jwks_uri;
  std::string token_endpoint;
  std::string device_authorization_endpoint;
};
absl::StatusOr<Discovery> Discover(const std::string& issuer,
                                   const FetchOptions& options);

// An RFC 8628 device authorization: what the user is shown.
struct DeviceAuthorization {
  std::string device_code;
  std::string user_code;
  std::string verification_uri;
  std::string verification_uri_complete;  // may be empty
  absl::Duration expires_in;
  absl::Duration interval;  // default 5 s
};

struct DeviceFlowOptions {
  FetchOptions fetch;
  std::string client_id;
  std::string scope = "openid email profile";
  // Called once the user has something to do (print the URL and code).
  std::function<void(const DeviceAuthorization&)> prompt;
  // How to wait between polls (tests shorten it). Default absl::SleepFor.
  std::function<void(absl::Duration)> sleep;
};

// RunDeviceFlow: discovery of `issuer`, a device authorization request
// (client_id, scope), `prompt`, then polls the token endpoint
// (grant_type urn:ietf:params:oauth:grant-type:device_code) every
// `interval`, slower after `slow_down`, until the user approved (returns the
// id_token), denied (PermissionDenied "access_denied"), or the code
// expired (DeadlineExceeded). Other OAuth errors are Unauthenticated with
// the provider's error and description.
absl::StatusOr<std::string> RunDeviceFlow(const std::string& issuer,
                                          const DeviceFlowOptions& options);

}  // namespace warden::controlplane::idp

#endif  // WARDEN_CONTROLPLANE_IDP_OIDC_CLIENT_H_
