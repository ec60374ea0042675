// `wardenctl policy push | diff | history | rollback | status`: policy
// bundles on warden-control (PolicyService), as functions of their options
// and streams so that tests call them against an in-process server.
// Output conventions and exit codes: remote_common.h.
#ifndef WARDEN_CONTROLPLANE_CLI_REMOTE_POLICY_H_
#define WARDEN_CONTROLPLANE_CLI_REMOTE_POLICY_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "controlplane/cli/remote_common.h"

namespace warden::controlplane::cli {

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

}  // namespace warden::controlplane::cli

#endif  // WARDEN_CONTROLPLANE_CLI_REMOTE_POLICY_H_
