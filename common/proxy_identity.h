// How a proxy is named in its Warden certificate, shared by the CA that
// issues it (controlplane/ca) and the proxy that reads its own back
// (dataplane/bundle_client): CN = proxy id, and the URI SAN
// "spiffe://warden/proxy/<environment>/<proxy_id>".
#ifndef WARDEN_COMMON_PROXY_IDENTITY_H_
#define WARDEN_COMMON_PROXY_IDENTITY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace warden {

struct ProxyIdentity {
  std::string proxy_id;
  std::string environment;
  // The serial (hex) of the certificate it was read from, when it was read
  // from one: warden-control binds each proxy id to its current
  // certificate (controlplane/proxies).
  std::string certificate_serial = {};
};

// Proxy ids and environment names: 1-64 of [A-Za-z0-9._-], not starting
// with '.' (they become URI path segments and file names). InvalidArgument
// naming `what` otherwise.
absl::Status ValidateProxyName(absl::string_view what, absl::string_view value);

// "spiffe://warden/proxy/<environment>/<proxy_id>".
std::string ProxyUri(const ProxyIdentity& identity);

// The identity named by the first proxy URI among `uris` (a certificate's
// URI SANs). NotFound if none is a well-formed proxy URI.
absl::StatusOr<ProxyIdentity> ProxyIdentityFromUris(
    const std::vector<std::string>& uris);

}  // namespace warden

#endif  // WARDEN_COMMON_PROXY_IDENTITY_H_
