// The policy gate: what the proxy asks before it relays a statement. It
// analyzes the SQL (through a bounded parse cache), evaluates it with
// policy/engine against the loaded bundle, and turns a refusal into the
// SQLSTATE and texts the client will see. Thread-safe; one per proxy.
#ifndef WARDEN_DATAPLANE_GATE_GATE_H_
#define WARDEN_DATAPLANE_GATE_GATE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/names.h"
#include "policy/engine/engine.h"
#include "policy/sql/cache.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::dataplane::gate {

struct Verdict {
  bool allowed = true;
  policy::engine::Decision decision;
  // The statements judged (shared with the parse cache); null when the SQL
  // did not parse or for FunctionCall.
  policy::sql::FactsPtr facts;
  // For refusals: what the client sees in its ErrorResponse.
  std::string sqlstate;  // 42501, or 42601 for unparseable SQL.
  std::string message;
  std::string detail;
  std::string hint;
  int position = 0;  // 42601: 1-based character of the syntax error.
  // The policy that decided: the control plane's revision (0 for policies
  // read from files) and the bundle's content digest. Refusals name them in
  // DETAIL; the audit records them with every decision.
  uint64_t revision = 0;
  std::string digest;
};

class Gate {
 public:
  // `revision`: the control plane's revision of `bundle`; 0 when it was
  // compiled from files.
  Gate(warden::v1::PolicyBundle bundle, size_t cache_entries,
       uint64_t revision = 0);
  Gate(const Gate&) = delete;  // the matcher points into bundle_.
  Gate& operator=(const Gate&) = delete;

  // Load reads the policy files and folders and compiles them; the error
  // lists every diagnostic (file:line:column).
  static absl::StatusOr<std::unique_ptr<Gate>> Load(
      const std::vector<std::string>& paths, size_t cache_entries);

  // Judge decides one Query or Parse message's SQL text for `subject` in
  // `environment` / `database`.
  Verdict Judge(absl::string_view sql, const policy::engine::Subject& subject,
                const std::string& environment,
                const std::string& database) const;

  // JudgeFacts decides statements already analyzed (a Verdict's `facts`),
  // e.g. a prepared statement judged again after the policy changed.
  Verdict JudgeFacts(policy::sql::FactsPtr facts,
                     const policy::engine::Subject& subject,
                     const std::string& environment,
                     const std::string& database) const;

  // JudgeFunctionCall decides a fast-path FunctionCall message, which names
  // a function by OID and carries no SQL: it is judged as a statement with
  // command tag "FUNCTION CALL" calling function "oid:<n>", marked as
  // unresolved dynamic SQL (what an OID names cannot be checked).
  Verdict JudgeFunctionCall(uint32_t function_oid,
                            const policy::engine::Subject& subject,
                            const std::string& environment,
                            const std::string& database) const;

  // A denial of an already judged statement by one of Warden's built-in
  // rules (policy "warden", rule `rule`), whatever the policies decided:
  // keeps `judged`'s facts, audit level and deciding statement. `why`
  // completes "Warden refuses this: ...".
  Verdict DenyBuiltIn(const Verdict& judged, const std::string& rule,
                      const std::string& why) const;

  // The directory entry (SCIM) of `user`, by the rules of
  // policy::engine::FindDirectoryEntry (indexed).
  policy::engine::DirectoryMatch FindDirectoryEntry(
      absl::string_view user) const;
  // The directory name (userName or alias) `name` looks like without
  // being it (common/names NamesLookAlike); "" when none.
  std::string DirectoryLookAlike(absl::string_view name) const {
    return lookalikes_.Find(name);
  }

  const warden::v1::PolicyBundle& bundle() const { return bundle_; }
  uint64_t revision() const { return revision_; }
  // Unique per Gate ever built in this process (never reused, unlike an
  // address): sessions compare it to know whether a statement they keep
  // was judged by the policy now in force.
  uint64_t generation() const { return generation_; }
  policy::sql::FactsCache::Stats cache_stats() const {
    return cache_.stats();
  }

 private:
  Verdict Explain(policy::engine::Decision decision,
                  const absl::Status& parse_error) const;

  const warden::v1::PolicyBundle bundle_;
  const uint64_t revision_;
  const uint64_t generation_;
  const policy::engine::Matcher matcher_;  // over bundle_.
  mutable policy::sql::FactsCache cache_;
  // Decisions of shared analyses, per identity and place: the facts cache
  // hands out one FactsPtr for every text of a statement shape, and the
  // policy match is the larger part of judging it. An entry holds its
  // FactsPtr, so the address in its key cannot be reused while it is
  // there. Cleared when full; a Gate is one policy revision.
  struct CachedDecision {
    policy::sql::FactsPtr facts;
    policy::engine::Decision decision;
  };
  static constexpr size_t kMaxCachedDecisions = 4096;
  static constexpr size_t kMaxCachedDecisionText = 4096;  // bytes of SQL
  mutable absl::Mutex decisions_mu_;
  mutable absl::flat_hash_map<std::string, CachedDecision> decisions_
      ABSL_GUARDED_BY(decisions_mu_);
  // Lower-case userName and aliases -> what they match in
  // bundle_.directory().
  absl::flat_hash_map<std::string, policy::engine::DirectoryMatch> directory_;
  // The same names by skeleton.
  LookAlikeIndex lookalikes_;
};

}  // namespace warden::dataplane::gate

#endif  // WARDEN_DATAPLANE_GATE_GATE_H_
