// How a proxy is named in its Warden certificate, shared by the CA that
// issues it (controlplane/ca) and the proxy that reads its own back
// (dataplane/bundle_client): CN = proxy id, the URI SAN
// "spiffe://warden/proxy/<environment>/<proxy_id>", and one URI SAN
// "spiffe://warden/proxy-serves/<environment>" for each other environment
// the proxy's listeners may serve (its events may name them).
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
  // Other environments the proxy's listeners serve (the bootstrap token
  // named them); its audit events may carry these as well as
  // `environment`, which names its sequence stream.
  std::vector<std::string> also_serves = {};

  // Whether events of environment `env` may come from this proxy.
  bool Serves(absl::string_view env) const;
};

// Proxy ids and environment names: 1-64 of [A-Za-z0-9._-], not starting
// with '.' (they become URI path segments and file names). InvalidArgument
// naming `what` otherwise.
// The names only warden-control's own audit events carry: environment
// "control" and proxy id "warden-control", in any case and with trailing
// '.', '_' or '-' (which ValidateProxyName allows), so that no proxy's
// events can read like the control plane's. InvalidArgument if reserved.
absl::Status CheckNotReserved(absl::string_view what, absl::string_view value);

// Names that read alike in an audit line share this key: lower case,
// without trailing '.', '_' or '-' ("P1." and "p1" do). Reserved names and
// proxy ids are unique by it.
std::string LookAlikeKey(absl::string_view name);

absl::Status ValidateProxyName(absl::string_view what, absl::string_view value);

// "spiffe://warden/proxy/<environment>/<proxy_id>".
std::string ProxyUri(const ProxyIdentity& identity);

// "spiffe://warden/proxy-serves/<environment>".
std::string ProxyServesUri(absl::string_view environment);

// The identity named by the first proxy URI among `uris` (a certificate's
// URI SANs), with every well-formed proxy-serves URI in also_serves.
// NotFound if none is a well-formed proxy URI.
absl::StatusOr<ProxyIdentity> ProxyIdentityFromUris(
    const std::vector<std::string>& uris);

}  // namespace warden

#endif  // WARDEN_COMMON_PROXY_IDENTITY_H_
