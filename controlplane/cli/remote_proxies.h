// `wardenctl proxies list | revoke`: enrolled proxies on warden-control
// (ProxyEnrollment). Output conventions: remote_common.h.
#ifndef WARDEN_CONTROLPLANE_CLI_REMOTE_PROXIES_H_
#define WARDEN_CONTROLPLANE_CLI_REMOTE_PROXIES_H_

#include <ostream>
#include <string>

#include "controlplane/cli/remote_common.h"

namespace warden::controlplane::cli {

struct ProxiesListOptions : RemoteOptions {};

// `wardenctl proxies list`: "PROXY  STATE  CERTIFICATE  ENROLLED  BY"
// per enrolled proxy (policy:read). JSON: {"proxies": [...]}.
int RunProxiesList(const ProxiesListOptions& options, std::ostream& out,
                   std::ostream& err);

struct ProxiesRevokeOptions : RemoteOptions {
  std::string proxy;  // ENVIRONMENT/ID
  std::string reason;
};

// `wardenctl proxies revoke ENV/ID --reason ...` (admin): every later call
// of that proxy is refused. "revoked ENV/ID". JSON: the proxy.
int RunProxiesRevoke(const ProxiesRevokeOptions& options, std::ostream& out,
                     std::ostream& err);

}  // namespace warden::controlplane::cli

#endif  // WARDEN_CONTROLPLANE_CLI_REMOTE_PROXIES_H_
