// `wardenctl tokens create | list | revoke` (admin): API tokens on
// warden-control (TokenService). Output conventions: remote_common.h.
#ifndef WARDEN_CONTROLPLANE_CLI_REMOTE_TOKENS_H_
#define WARDEN_CONTROLPLANE_CLI_REMOTE_TOKENS_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "controlplane/cli/remote_common.h"

namespace warden::controlplane::cli {

struct TokenCreateOptions : RemoteOptions {
  std::string name;
  std::vector<std::string> scopes;  // policy:write, policy:read, audit:read,
                                    // approvals:decide, admin.
  std::string ttl = "720h";         // "0": never expires.
  // proxy:enroll (bootstrap) tokens only: the environment and, optionally,
  // the proxy id the enrolling proxy's certificate will name.
  // proxy:enroll takes exactly one; db:connect one or more.
  std::vector<std::string> environments;
  std::string proxy_id;
  // db:connect (service) tokens only: agent or service, the databases
  // (none: all) and groups policies see.
  std::string kind;
  std::vector<std::string> databases;
  std::vector<std::string> groups;
};

// `wardenctl tokens create`: the secret token alone on one line of `out`
// (shown only this once), its id and details on `err`. JSON: {"token",
// "info": {...}}.
int RunTokensCreate(const TokenCreateOptions& options, std::ostream& out,
                    std::ostream& err);

struct TokenListOptions : RemoteOptions {
  bool all = false;  // also revoked and expired tokens.
};

// `wardenctl tokens list`: "ID  NAME  SCOPES  CREATED  EXPIRES  STATE".
// JSON: {"tokens": [...]}.
int RunTokensList(const TokenListOptions& options, std::ostream& out,
                  std::ostream& err);

struct TokenRevokeOptions : RemoteOptions {
  std::string id;
};

// `wardenctl tokens revoke ID`: "revoked ID (NAME)". JSON: the token info.
int RunTokensRevoke(const TokenRevokeOptions& options, std::ostream& out,
                    std::ostream& err);

}  // namespace warden::controlplane::cli

#endif  // WARDEN_CONTROLPLANE_CLI_REMOTE_TOKENS_H_
