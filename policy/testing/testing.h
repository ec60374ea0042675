// Policy tests: YAML documents of kind PolicyTest (apiVersion warden/v1)
// that state, for a statement and who runs it where, which decision the
// compiled policies must give. They may share files with kind Policy
// documents (policy/lang skips them) or live in files of their own.
//
//   apiVersion: warden/v1
//   kind: PolicyTest
//   metadata: { name: production-guardrails-tests }
//   spec:
//     defaults: { environment: prod, database: shop, user: alice,
//                 groups: [], kind: human }
//     cases:
//       - name: drop-table-denied
//         sql: DROP TABLE orders
//         expect: { action: deny, rule: no-drop-data-objects }
//
// Cases run through policy::sql::Analyze and policy::engine::Evaluate, the
// code the proxy runs.
#ifndef WARDEN_POLICY_TESTING_TESTING_H_
#define WARDEN_POLICY_TESTING_TESTING_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "policy/engine/engine.h"
#include "policy/lang/compile.h"
#include "policy/sql/facts.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::policy::testing {

// What a case expects. `rule` and `policy` are checked only when given; an
// expected rule of "" means "a policy default decided, no rule matched".
struct Expectation {
  warden::v1::PolicyAction action = warden::v1::POLICY_ACTION_UNSPECIFIED;
  std::optional<std::string> rule;
  std::optional<std::string> policy;
};

struct TestCase {
  std::string name;
  std::string source;  // "file:line" of the case, for reports.
  std::string sql;
  std::string environment;
  std::string database;
  engine::Subject subject;  // kind defaults to "human".
  Expectation expect;
};

// One PolicyTest document.
struct TestSuite {
  std::string name;  // metadata.name.
  std::string file;
  std::vector<TestCase> cases;
};

// LoadTests reads every PolicyTest document of every file; documents of
// other kinds are ignored (policy/lang compiles them). Every problem is a
// diagnostic with file:line:column: YAML syntax, unknown keys (with a "did
// you mean" hint), missing name/sql/expect.action, an action other than
// allow/deny/require_approval, a kind other than human/agent/service, a
// case without an environment or database (neither in defaults nor in the
// case), duplicate case names within a suite. Returns the suites when there
// are no diagnostics; otherwise InvalidArgument listing them one per line,
// and fills `diagnostics` if given.
//
//   std::vector<lang::Diagnostic> diags;
//   auto suites = LoadTests({{"prod.yaml", text}}, &diags);
absl::StatusOr<std::vector<TestSuite>> LoadTests(
    const std::vector<lang::SourceFile>& files,
    std::vector<lang::Diagnostic>* diagnostics = nullptr);

struct CaseResult {
  std::string suite;
  std::string name;
  std::string source;
  std::string sql;
  bool passed = false;
  Expectation expected;
  engine::Decision actual;
  // One line per expectation that did not hold, e.g.
  // "action: expected deny, got allow". Empty when passed.
  std::vector<std::string> mismatches;
};

// RunTests evaluates every case of every suite against `bundle`, in order.
// Deterministic and side-effect free.
std::vector<CaseResult> RunTests(const warden::v1::PolicyBundle& bundle,
                                 const std::vector<TestSuite>& suites);

// "allow", "deny", "require_approval"; "unspecified" for anything else.
std::string ActionName(warden::v1::PolicyAction action);
// "metadata", "normalized", "full".
std::string AuditName(warden::v1::AuditLevel level);

// FactsToJson: one statement's facts as a JSON object, nested statements
// included recursively:
//   {"node": "DeleteStmt", "command": "DELETE", "class": "write",
//    "relations": [{"schema": "", "name": "orders"}], "functions": [],
//    "columns": [], "has_effective_filter": false, "text": "...",
//    "fingerprint": "...", "nested_via": "", "nested_languages": [],
//    "unresolved_dynamic_sql": false, "temporary": false, "nested": [...]}
nlohmann::json FactsToJson(const sql::StatementFacts& facts);

// A decision as {"decision", "policy", "rule", "message", "reason"}.
nlohmann::json DecisionToJson(const engine::Decision& decision);

}  // namespace warden::policy::testing

#endif  // WARDEN_POLICY_TESTING_TESTING_H_
