// `wardenctl login`: a short-lived client certificate from Warden's CA for
// the person holding an identity provider's ID token, for proxies'
// `auth: cert` listeners.
//
//   wardenctl login --token FILE|-        an ID token the user already has
//   wardenctl login [--provider NAME]     the OAuth device flow (RFC 8628)
//                                         with that provider (default: the
//                                         only one warden-control knows)
//
// wardenctl makes a P-256 key here and sends warden-control only a
// certificate request with the token (Login.IssueUserCertificate); the key
// never leaves the machine. It writes OUT/client.key (PEM, 0600),
// OUT/client.pk8 (the same key as PKCS#8 DER, 0600, for JDBC),
// OUT/client.crt and OUT/ca.crt (Warden's CA) to --out (default
// ~/.warden), and prints the psql line on `out`.
#ifndef WARDEN_CONTROLPLANE_CLI_LOGIN_COMMAND_H_
#define WARDEN_CONTROLPLANE_CLI_LOGIN_COMMAND_H_

#include <istream>
#include <ostream>
#include <string>

#include "controlplane/cli/remote_common.h"

namespace warden::controlplane::cli {

struct LoginOptions : RemoteOptions {
  std::string token_file;   // "-": stdin; empty: the device flow.
  std::string provider;     // by name; empty: the only one.
  std::string idp_ca_file;  // PEM CA for the provider's HTTPS; empty: system.
  std::string out_dir;      // empty: $HOME/.warden.
  // For the printed connection line only.
  std::string proxy;          // host:port of the proxy's `auth: cert` listener.
  std::string dbname;
  std::string proxy_ca_file;  // CA of the proxy's server certificate: then
                              // sslmode=verify-full, else sslmode=require.
};

// Text: the psql line alone on `out`; what was issued (user, groups,
// provider, expiry, files) on `err`. JSON: {"user", "groups", "provider",
// "not_after", "certificate", "key", "key_pk8", "ca", "psql"}. The device
// flow prints where to sign in on `err`. Exit codes as for every remote
// command; a refused or expired login is kExitAuth.
int RunLogin(const LoginOptions& options, std::istream& in, std::ostream& out,
             std::ostream& err);

}  // namespace warden::controlplane::cli

#endif  // WARDEN_CONTROLPLANE_CLI_LOGIN_COMMAND_H_
