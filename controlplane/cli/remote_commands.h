// wardenctl's commands that talk to warden-control over gRPC (policy push |
// history | rollback | status | diff, tokens create | list | revoke), as
// functions of their options and streams so that tests call them directly
// against an in-process server. main.cc only parses the command line.
//
// Every command: results on `out` (text or, with Format::kJson, one JSON
// document), problems on `err`. A failed RPC prints
// "error: <CODE_NAME>: <message>" on `err` (and, in JSON, {"error": {"code",
// "message"}} on `out`) and returns the exit code of ExitForGrpc.
#ifndef WARDEN_CONTROLPLANE_CLI_REMOTE_COMMANDS_H_
#define WARDEN_CONTROLPLANE_CLI_REMOTE_COMMANDS_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "controlplane/cli/policy_commands.h"
#include "policy/lang/compile.h"

namespace warden::controlplane::cli {

// How to reach the control plane (flags, or WARDEN_SERVER / WARDEN_TOKEN /
// WARDEN_CA_FILE).
struct Connection {
  std::string server;   // host:port, [v6]:port.
  std::string token;    // sent as "authorization: Bearer <token>"; empty: none.
  std::string ca_file;  // PEM CA of warden-control's certificate (required).
  std::string timeout = "10s";  // per RPC; absl duration syntax.
};

// TerminalSafe returns `text` as it may be printed in wardenctl's text
// outputs, which show values others wrote (audit events, token and user
// names, server messages): one line, no terminal control, no bidi trick.
// Escaped: backslash as \\; \n \r \t; every other C0 control and DEL as
// \xNN (ESC: \x1b); C1 controls U+0080-U+009F, line and paragraph
// separators U+2028/U+2029, bidi embeddings and overrides U+202A-U+202E,
// isolates U+2066-U+2069 and the marks U+061C, U+200E, U+200F as \uNNNN;
// bytes that are not UTF-8 as \xNN. Everything else, printable Unicode
// included, is kept.
//   TerminalSafe("a\nb\x1b[2J") == "a\\nb\\x1b[2J"   (as C++ literals)
// JSON outputs keep values exact instead (JSON escapes control characters).
std::string TerminalSafe(absl::string_view text);

// A TLS channel for `connection`, verifying the server against its CA
// file. InvalidArgument (a usage error) without a server or a readable CA
// file: warden-control only speaks TLS, and a token is never sent in clear.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const Connection& connection);

// UNAUTHENTICATED, PERMISSION_DENIED -> kExitAuth; UNAVAILABLE,
// DEADLINE_EXCEEDED -> kExitUnavailable; everything else -> kExitFailed.
int ExitForGrpc(const grpc::Status& status);


struct RemoteOptions {
  Connection connection;
  Format format = Format::kText;
};

struct PushOptions : RemoteOptions {
  std::vector<std::string> paths;
  std::string message;
  bool dry_run = false;
  bool skip_tests = false;
  // --wait DURATION: after the push, wait until every connected proxy runs
  // the revision (or a newer one); "" does not wait.
  std::string wait;
};

// `wardenctl policy push`. Text: "revision N (digest D)", "unchanged at
// revision N" or "dry run: valid, digest D" on `out`; a rejected push prints
// each diagnostic ("file:line:col: message (hint: ...)") and "rejected: N
// problems" on `err` and returns kExitFailed. JSON: {"accepted", "dry_run",
// "unchanged", "revision", "digest", "diagnostics": [...]}.
// With `wait`, it then polls the fleet status: every proxy connected at the
// time runs the revision -> "N proxies run revision R" (JSON: "proxies",
// "waited": {"proxy_id": running_revision}); a proxy that refused it (NACK)
// or the wait running out -> the lagging proxies on `err`, kExitFailed.
int RunPush(const PushOptions& options, std::ostream& out, std::ostream& err);

struct HistoryOptions : RemoteOptions {
  int limit = 20;  // newest first; pages are fetched until this many.
};

// `wardenctl policy history`: one line per revision, newest first:
// "REV  CREATED  BY  DIGEST(12)  MESSAGE" (rollbacks say "rollback of R").
// JSON: {"revisions": [{"revision", "parent_revision", "digest",
// "created_by", "created_at", "message", "rollback_of", "sources"}]}.
int RunHistory(const HistoryOptions& options, std::ostream& out,
               std::ostream& err);

struct RollbackOptions : RemoteOptions {
  uint64_t revision = 0;
  std::string message;
};

// `wardenctl policy rollback REVISION`: "revision N (digest D), rollback of
// R". JSON: {"revision", "digest", "rollback_of"}.
int RunRollback(const RollbackOptions& options, std::ostream& out,
                std::ostream& err);

struct StatusOptions : RemoteOptions {
  std::string environment;  // empty: all.
};

// `wardenctl policy status`: "current revision: N" then one line per proxy
// (or "no proxies connected"). JSON: {"current_revision", "proxies": [...]}.
int RunStatus(const StatusOptions& options, std::ostream& out,
              std::ostream& err);

struct DiffOptions : RemoteOptions {
  std::vector<std::string> paths;
};

// `wardenctl policy diff`: compiles the local files and compares them with
// the server's current bundle, policy by policy and rule by rule (by name):
//   + policy P            / - policy P             (with each of its rules)
//   + policy P rule R     / - policy P rule R
//   ~ policy P            its settings (environments, databases, defaults)
//   ~ policy P rule R     the rule differs (ignoring its source position)
//   ~ policy P rule order the same rules in another order
// then "N changes against revision R" or "no changes against revision R".
// JSON: {"revision", "local_digest", "server_digest", "changes": [{"op":
// "+"|"-"|"~", "policy", "rule"?, "what"?}]}. Returns kExitOk (no change),
// kExitDifferences, kExitFailed (invalid local files) or the RPC's code.
// With nothing pushed yet everything is "+" against revision 0.
int RunDiff(const DiffOptions& options, std::ostream& out, std::ostream& err);

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

struct IdentitiesListOptions : RemoteOptions {
  std::string user;  // empty: everyone
};

// `wardenctl identities list`: "USER  STATE  MODIFIED  GROUPS" per
// directory user (policy:read). JSON: {"identities": [...]}.
int RunIdentitiesList(const IdentitiesListOptions& options, std::ostream& out,
                      std::ostream& err);

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

struct IdentitiesSetActiveOptions : RemoteOptions {
  std::string user;
  bool active = false;
  std::string reason;
};

// `wardenctl identities deactivate|activate USER` (admin): cuts a user off
// on every proxy (or lets them back), SCIM-provisioned or not.
int RunIdentitiesSetActive(const IdentitiesSetActiveOptions& options,
                           std::ostream& out, std::ostream& err);

// ---------------------------------------------------------------------------
// wardenctl audit (scope audit:read, except verify, which is offline)

// `wardenctl audit checkpoint [--out FILE]`: the latest signed checkpoint
// (C2SP signed note) on `out`, and saved to FILE. JSON: {"checkpoint",
// "tree_size", "root_hash" (hex), "verifier_key"}.
struct AuditCheckpointOptions : RemoteOptions {
  std::string out_file;
};
int RunAuditCheckpoint(const AuditCheckpointOptions& options,
                       std::ostream& out, std::ostream& err);

// `wardenctl audit export --out FILE [--from N] [--to N]`: entries [from,
// to) (to 0: the current size) as JSON lines {"index": i, "leaf": base64}.
struct AuditExportOptions : RemoteOptions {
  std::string out_file;
  // A saved checkpoint: export exactly the entries it signed ([0, size)).
  std::string checkpoint_file;
  uint64_t from = 0;
  uint64_t to = 0;
  // Also the same entries decoded, one JSON object per line as `audit tail
  // --format json` prints them ({"index": N, "leaf": {...}}): for people
  // and jq; `audit verify` reads the --out file, not this one.
  std::string decoded_file;
};
int RunAuditExport(const AuditExportOptions& options, std::ostream& out,
                   std::ostream& err);

// `wardenctl audit verify --log FILE --checkpoint FILE --key KEY` (offline;
// KEY is the verifier key text or a file holding it): checks the signature,
// the hash chain and the Merkle root (controlplane/audit/verify). Exit 0
// when the log matches, 1 naming the first bad index otherwise, 2 for
// unreadable input. Entries after the checkpoint fail (1) unless
// --allow-uncovered; a line with anything but "index" and "leaf" (or one
// of them twice) is unreadable input (2).
struct AuditVerifyOptions {
  std::string log_file;
  std::string checkpoint_file;
  std::string key;
  bool allow_uncovered = false;
  Format format = Format::kText;
};
int RunAuditVerify(const AuditVerifyOptions& options, std::ostream& out,
                   std::ostream& err);

// `wardenctl audit tail [--from N] [--limit N] [--follow] [filters]`:
// events, one line each (JSON: one AuditLeaf object per line; --ocsf: one
// OCSF object per line). Without --from, the last --limit entries of the
// log (default 20); --follow then streams new ones (AuditExport.Subscribe).
// `wardenctl audit search [filters] [--from N] [--limit 100]`: the first
// --limit matching events from --from (default 0), paged (ListEvents).
// Filters: --user, --env, --decision allow|deny|require_approval, --kind
// statement|session_start|session_end|authentication|admin (repeatable).
struct AuditTailOptions : RemoteOptions {
  int64_t from = -1;
  uint64_t limit = 20;
  bool follow = false;
  bool search = false;  // `audit search`
  bool ocsf = false;
  std::vector<std::string> users;
  std::vector<std::string> environments;
  std::vector<std::string> decisions;
  std::vector<std::string> kinds;
};
int RunAuditTail(const AuditTailOptions& options, std::ostream& out,
                 std::ostream& err);

// `wardenctl audit proof INDEX [--checkpoint FILE --key KEY]`: the
// inclusion proof of entry INDEX, verified against the given checkpoint
// (or the current one, verified with --key when given). Exit 0 verified,
// 1 not.
struct AuditProofOptions : RemoteOptions {
  uint64_t index = 0;
  std::string checkpoint_file;
  std::string key;
};
int RunAuditProof(const AuditProofOptions& options, std::ostream& out,
                  std::ostream& err);

}  // namespace warden::controlplane::cli

#endif  // WARDEN_CONTROLPLANE_CLI_REMOTE_COMMANDS_H_
