// `wardenctl identities list | activate | deactivate`: the directory's
// users on warden-control (DirectoryService). Output conventions:
// remote_common.h.
#ifndef WARDEN_CONTROLPLANE_CLI_REMOTE_IDENTITIES_H_
#define WARDEN_CONTROLPLANE_CLI_REMOTE_IDENTITIES_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "controlplane/cli/remote_common.h"

namespace warden::controlplane::cli {

struct IdentitiesListOptions : RemoteOptions {
  std::string user;  // empty: everyone
};

// `wardenctl identities list`: "USER  STATE  MODIFIED  GROUPS" per
// directory user (policy:read). JSON: {"identities": [...]}.
int RunIdentitiesList(const IdentitiesListOptions& options, std::ostream& out,
                      std::ostream& err);

struct IdentitiesSetActiveOptions : RemoteOptions {
  std::string user;
  bool active = false;
  std::string reason;
};

// `wardenctl identities deactivate|activate USER` (admin): cuts a user off
// on every proxy (or lets them back), SCIM-provisioned or not.
int RunIdentitiesSetActive(const IdentitiesSetActiveOptions& options,
                           std::ostream& out, std::ostream& err);

}  // namespace warden::controlplane::cli

#endif  // WARDEN_CONTROLPLANE_CLI_REMOTE_IDENTITIES_H_
