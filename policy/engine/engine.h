// Pure, deterministic evaluation: statement facts + who + where, against a
// compiled bundle, give a decision, the rule that made it and why. The
// proxy and wardenctl run this same code.
#ifndef WARDEN_POLICY_ENGINE_ENGINE_H_
#define WARDEN_POLICY_ENGINE_ENGINE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "policy/sql/facts.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::policy::engine {

struct Subject {
  std::string user;
  std::vector<std::string> groups;
  std::string kind;  // human | agent | service.
  // From the directory (SCIM): department, title, ...
  std::map<std::string, std::string> attributes;
};

struct Decision {
  warden::v1::PolicyAction action = warden::v1::POLICY_ACTION_DENY;
  std::string policy;   // the policy whose rule (or default) decided.
  std::string rule;     // empty when a default decided.
  std::string message;  // the rule's message for the user.
  // One line for logs and audit, naming the statement that decided, e.g.
  // "DROP TABLE denied by rule no-drop-data-objects of policy
  // production-guardrails (statement 2, inside DO via execute)".
  std::string reason;
  // How much of the message the audit record keeps: the most detailed level
  // among every rule that matched and every default that applied, for every
  // statement of the message (a rule without a level has its policy's
  // default_audit; unspecified everywhere is FULL). FULL when no policy
  // applies or the SQL could not be parsed and no policy says otherwise.
  warden::v1::AuditLevel audit = warden::v1::AUDIT_LEVEL_FULL;
  // The statement that decided: its 0-based index in the message (-1 for
  // unparseable SQL, an empty message or no applicable policy), its command
  // tag ("DROP TABLE", possibly of a nested statement) and how it is nested
  // ("" at top level, "DO via execute", "CREATE FUNCTION via plpgsql > DO
  // via execute").
  int statement = -1;
  std::string command;
  std::string via;
};

// Evaluate: across every statement of the message and every statement
// nested inside them, and across every policy that applies to
// `environment`/`database`, the most restrictive outcome wins (deny >
// require_approval > allow); a policy's default applies to a statement no
// rule of that policy matched. `facts` carrying an error (unparseable SQL)
// gets the strictest `unparseable` default of the applicable policies.
// With no applicable policy the answer is deny (fail closed).
Decision Evaluate(const warden::v1::PolicyBundle& bundle,
                  const absl::StatusOr<std::vector<sql::StatementFacts>>& facts,
                  const Subject& subject, const std::string& environment,
                  const std::string& database);

// The same, for facts the caller holds elsewhere (the parse cache), without
// copying them: `facts` null means the SQL was unparseable, for `error`.
Decision Evaluate(const warden::v1::PolicyBundle& bundle,
                  const std::vector<sql::StatementFacts>* facts,
                  const absl::Status& error, const Subject& subject,
                  const std::string& environment, const std::string& database);

// Which database role `subject` uses in `environment`/`database`: the
// first identity mapping of the bundle that applies there decides (its
// first matching rule, else its default role). `mapped` false: no mapping
// applies (the proxy's service role is used); `role` empty with `mapped`:
// refused, `reason` says why.
struct RoleDecision {
  bool mapped = false;
  std::string role;
  std::string mapping;  // the mapping's name
  std::string source;   // file:line of the rule (or mapping, for a default)
  std::string reason;
};
RoleDecision MapRole(const warden::v1::PolicyBundle& bundle,
                     const Subject& subject, const std::string& environment,
                     const std::string& database);

// What the directory (SCIM) says about a user name.
struct DirectoryMatch {
  // Null when the directory does not know the name (or it is ambiguous).
  const warden::v1::DirectoryEntry* entry = nullptr;
  // The name is an alias of several active entries and a userName of
  // none: it names no one for sure, and is refused.
  bool ambiguous = false;
};

// The bundle's directory entry for `user`, ignoring case: the entry whose
// userName it is; otherwise among the entries it is an e-mail alias of, an
// inactive (deactivated or deleted) one wins over active ones, so a
// deactivated person cannot come back through someone else's alias; two or
// more active ones are ambiguous. Linear; the proxy's gate keeps an index
// with the same rules.
DirectoryMatch FindDirectoryEntry(const warden::v1::PolicyBundle& bundle,
                                  absl::string_view user);

// When `name` (the entry's userName or one of its aliases, any case)
// became the entry's, if it had a holder before: a token or certificate
// for the name issued before then was issued to that holder. Nullopt when
// the name never changed hands.
std::optional<absl::Time> NameReusedAt(const warden::v1::DirectoryEntry& entry,
                                       absl::string_view name);

// The same answers for every userName and alias of the directory, built
// in one pass (what the proxy's gate keeps): lower-case name -> match.
absl::flat_hash_map<std::string, DirectoryMatch> DirectoryIndex(
    const warden::v1::PolicyBundle& bundle);

// A bundle prepared once for repeated evaluation (what the proxy holds):
// every glob list of every rule is split into exact names (hash lookups),
// "prefix*" patterns and real globs. Evaluates exactly like the functions
// above. `bundle` must outlive the Matcher. Thread-safe (read-only).
class Matcher {
 public:
  explicit Matcher(const warden::v1::PolicyBundle* bundle);
  ~Matcher();
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;

  Decision Evaluate(const std::vector<sql::StatementFacts>* facts,
                    const absl::Status& error, const Subject& subject,
                    const std::string& environment,
                    const std::string& database) const;

 private:
  struct Compiled;
  std::unique_ptr<const Compiled> compiled_;
};

}  // namespace warden::policy::engine

#endif  // WARDEN_POLICY_ENGINE_ENGINE_H_
