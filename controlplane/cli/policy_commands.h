// wardenctl policy validate | test | eval, as functions of their options
// and streams so that they can be tested without a process. main.cc only
// parses the command line (CLI11) and calls these.
#ifndef WARDEN_CONTROLPLANE_CLI_POLICY_COMMANDS_H_
#define WARDEN_CONTROLPLANE_CLI_POLICY_COMMANDS_H_

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "policy/lang/compile.h"

namespace warden::controlplane::cli {

// Process exit codes of wardenctl. Stable: CI scripts depend on them.
enum ExitCode : int {
  kExitOk = 0,               // valid / all tests pass / eval: allow.
  kExitFailed = 1,           // invalid policy or test file, failing test.
  kExitUsage = 2,            // bad flags, unreadable path, no inputs.
  kExitDenied = 3,           // eval: deny.
  kExitRequiresApproval = 4, // eval: require_approval.
  // Remote commands (remote_common.h):
  kExitDifferences = 5,      // diff: local policies differ from the server.
  kExitAuth = 6,             // UNAUTHENTICATED / PERMISSION_DENIED.
  kExitUnavailable = 7       // UNAVAILABLE / DEADLINE_EXCEEDED.
};

enum class Format { kText, kJson };

struct ValidateOptions {
  std::vector<std::string> paths;
  Format format = Format::kText;
};

// `wardenctl policy validate`. Text: diagnostics one per line on `err`
// ("file:line:col: message (hint: ...)"); on success "valid: N policies,
// M rules, digest D" on `out`. JSON (on `out`): {"valid": bool, "policies":
// N, "rules": M, "digest": "...", "diagnostics": [{"file", "line",
// "column", "message", "hint"}]}. Returns kExitOk, kExitFailed or kExitUsage.
int RunValidate(const ValidateOptions& options, std::ostream& out,
                std::ostream& err);

struct TestOptions {
  std::vector<std::string> paths;
  Format format = Format::kText;
};

// `wardenctl policy test`: compiles the policies of `paths` and runs every
// PolicyTest case found in the same files. Text: each failing case with
// expected vs actual and the reason, then "N passed, M failed". JSON:
// {"passed": N, "failed": M, "diagnostics": [...], "results": [{"suite",
// "name", "source", "sql", "passed", "expected": {"action", "rule"?,
// "policy"?}, "actual": {"decision", "policy", "rule", "message",
// "reason"}, "mismatches": [...]}]}. kExitFailed when any case fails, a
// file is invalid, or there is no case at all.
int RunTest(const TestOptions& options, std::ostream& out, std::ostream& err);

struct EvalOptions {
  std::vector<std::string> policy_paths;
  std::string environment;
  std::string database;
  std::string user;
  std::vector<std::string> groups;
  std::string kind = "human";
  std::string sql;  // "-" reads `in`.
  Format format = Format::kText;
};

// `wardenctl policy eval`: the decision for one SQL string. JSON: {"decision",
// "policy", "rule", "message", "reason", "statements": [facts...]} plus
// "error" when the SQL does not parse. Returns kExitOk (allow), kExitDenied,
// kExitRequiresApproval, kExitFailed (invalid policy) or kExitUsage.
int RunEval(const EvalOptions& options, std::istream& in, std::ostream& out,
            std::ostream& err);

}  // namespace warden::controlplane::cli

#endif  // WARDEN_CONTROLPLANE_CLI_POLICY_COMMANDS_H_
