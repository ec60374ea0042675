#include "dataplane/gate/gate.h"

#include <atomic>
#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/lang/compile.h"
#include "policy/lang/sources.h"
#include "common/names.h"
#include "dataplane/pgwire/sqlstate.h"

namespace warden::dataplane::gate {
namespace {

const warden::v1::Rule* FindRule(const warden::v1::PolicyBundle& bundle,
                                 const std::string& policy,
                                 const std::string& rule) {
  if (rule.empty()) return nullptr;
  for (const auto& p : bundle.policies()) {
    if (p.name() != policy) continue;
    for (const auto& r : p.rules()) {
      if (r.name() == rule) return &r;
    }
  }
  return nullptr;
}

std::string ApprovalHint(const warden::v1::Rule* rule) {
  std::string who = "a reviewer";
  int count = 1;
  if (rule != nullptr && rule->has_approval()) {
    if (!rule->approval().reviewers().empty()) {
      who = absl::StrJoin(rule->approval().reviewers(), ", ");
    }
    count = std::max(1, rule->approval().approvals());
  }
  return absl::StrCat(
      "It needs ", count, count == 1 ? " approval" : " approvals", " from ",
      who,
      ". This Warden version cannot hold statements for approval yet, so it "
      "was not run; ask a reviewer to run it or to change the policy.");
}

uint64_t NextGeneration() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

}  // namespace

Gate::Gate(warden::v1::PolicyBundle bundle, size_t cache_entries,
           uint64_t revision)
    : bundle_(std::move(bundle)),
      revision_(revision),
      generation_(NextGeneration()),
      matcher_(&bundle_),
      cache_(cache_entries) {
  // policy::engine::FindDirectoryEntry's rules, indexed in one pass.
  directory_ = policy::engine::DirectoryIndex(bundle_);
  for (const auto& entry : bundle_.directory()) {
    lookalikes_.Add(entry.user_name());
    for (const auto& alias : entry.aliases()) lookalikes_.Add(alias);
    // As the provider wrote them: "jane@Iab.example" reads as
    // "jane@lab.example", its lower case does not (red team pass 10).
    for (const auto& written : entry.written_names()) lookalikes_.Add(written);
  }
}

policy::engine::DirectoryMatch Gate::FindDirectoryEntry(
    absl::string_view user) const {
  if (directory_.empty()) return {};
  auto it = directory_.find(FoldName(user));
  return it == directory_.end() ? policy::engine::DirectoryMatch{}
                                : it->second;
}

absl::StatusOr<std::unique_ptr<Gate>> Gate::Load(
    const std::vector<std::string>& paths, size_t cache_entries) {
  auto sources = policy::lang::ReadSources(paths);
  if (!sources.ok()) return sources.status();
  std::vector<policy::lang::Diagnostic> diagnostics;
  auto bundle = policy::lang::Compile(*sources, &diagnostics);
  if (!bundle.ok()) {
    // Named by the path the operator configured, not the bundle name.
    policy::lang::ShowLocalPaths(*sources, &diagnostics);
    std::vector<std::string> lines;
    for (const auto& d : diagnostics) lines.push_back(d.ToString());
    if (lines.empty()) return bundle.status();
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }
  return std::make_unique<Gate>(*std::move(bundle), cache_entries);
}

Verdict Gate::Judge(absl::string_view sql,
                    const policy::engine::Subject& subject,
                    const std::string& environment,
                    const std::string& database) const {
  auto facts = cache_.Get(sql);
  if (!facts.ok()) {
    return Explain(matcher_.Evaluate(nullptr, facts.status(), subject,
                                     environment, database),
                   facts.status());
  }
  return JudgeFacts(*std::move(facts), subject, environment, database);
}

Verdict Gate::JudgeFacts(policy::sql::FactsPtr facts,
                         const policy::engine::Subject& subject,
                         const std::string& environment,
                         const std::string& database) const {
  // Everything the decision depends on besides the policy: the analysis
  // (by address, pinned by the entry), where, and who.
  std::string key = absl::StrCat(
      reinterpret_cast<uintptr_t>(facts.get()), "\x1f", environment, "\x1f",
      database, "\x1f", subject.user, "\x1f", subject.kind, "\x1f",
      absl::StrJoin(subject.groups, "\x1e"), "\x1f",
      absl::StrJoin(subject.attributes, "\x1e", absl::PairFormatter("\x1d")));
  policy::engine::Decision decision;
  bool hit = false;
  {
    absl::MutexLock lock(&decisions_mu_);
    auto it = decisions_.find(key);
    if (it != decisions_.end()) {
      decision = it->second.decision;
      hit = true;
    }
  }
  // Only what the facts cache keeps anyway (short statements): an entry
  // pins its analysis, and a long one-off text must not stay alive here.
  size_t text_bytes = 0;
  for (const auto& f : *facts) text_bytes += f.text.size();
  if (!hit) {
    decision = matcher_.Evaluate(facts.get(), absl::OkStatus(), subject,
                                 environment, database);
    if (text_bytes > kMaxCachedDecisionText) {
      Verdict v = Explain(std::move(decision), absl::OkStatus());
      v.facts = std::move(facts);
      return v;
    }
    absl::MutexLock lock(&decisions_mu_);
    if (decisions_.size() >= kMaxCachedDecisions) decisions_.clear();
    decisions_.emplace(std::move(key), CachedDecision{facts, decision});
  }
  Verdict v = Explain(std::move(decision), absl::OkStatus());
  v.facts = std::move(facts);
  return v;
}

Verdict Gate::JudgeFunctionCall(uint32_t function_oid,
                                const policy::engine::Subject& subject,
                                const std::string& environment,
                                const std::string& database) const {
  std::vector<policy::sql::StatementFacts> facts(1);
  auto& f = facts[0];
  f.node = "FunctionCall";
  f.command = "FUNCTION CALL";
  f.statement_class = policy::sql::StatementClass::kUtility;
  f.functions.push_back(absl::StrCat("oid:", function_oid));
  // Which function an OID names is the database's business: Warden cannot
  // check it, exactly like EXECUTE of a computed string.
  f.unresolved_dynamic_sql = true;
  f.text = absl::StrCat("<fast-path call of function OID ", function_oid, ">");
  return Explain(matcher_.Evaluate(&facts, absl::OkStatus(), subject,
                                   environment, database),
                 absl::OkStatus());
}

Verdict Gate::DenyBuiltIn(const Verdict& judged, const std::string& rule,
                          const std::string& why) const {
  policy::engine::Decision d;
  d.action = warden::v1::POLICY_ACTION_DENY;
  d.policy = "warden";
  d.rule = rule;
  d.message = absl::StrCat("Warden refuses this: ", why, ".");
  d.reason = absl::StrCat(
      judged.decision.command.empty() ? "statement" : judged.decision.command,
      " denied by Warden's built-in rule ", rule, ": ", why);
  d.audit = judged.decision.audit;
  d.statement = judged.decision.statement;
  d.command = judged.decision.command;
  d.via = judged.decision.via;
  Verdict v = Explain(std::move(d), absl::OkStatus());
  v.facts = judged.facts;
  return v;
}

Verdict Gate::Explain(policy::engine::Decision decision,
                      const absl::Status& parse_error) const {
  Verdict v;
  v.decision = std::move(decision);
  v.revision = revision_;
  v.digest = bundle_.digest();
  const auto& d = v.decision;
  if (d.action == warden::v1::POLICY_ACTION_ALLOW) return v;
  v.allowed = false;
  v.detail = revision_ != 0
                 ? absl::StrCat(d.reason, " [policy revision ", revision_, "]")
                 : absl::StrCat(d.reason, " [policy ",
                                bundle_.digest().substr(0, 12), "]");
  const warden::v1::Rule* rule = FindRule(bundle_, d.policy, d.rule);
  if (d.action == warden::v1::POLICY_ACTION_REQUIRE_APPROVAL) {
    v.sqlstate = pgwire::kInsufficientPrivilege;
    v.message = absl::StrCat("Warden: approval required by rule \"", d.rule,
                             "\" of policy \"", d.policy, "\"");
    if (!d.message.empty()) absl::StrAppend(&v.message, ": ", d.message);
    v.hint = ApprovalHint(rule);
    return v;
  }
  if (!parse_error.ok()) {
    // What PostgreSQL would have said, and that Warden refused it unseen.
    v.sqlstate = pgwire::kSyntaxError;
    // policy/sql ends the message with " (at character N)": that becomes
    // the position field, as PostgreSQL sends it.
    absl::string_view text = parse_error.message();
    const size_t at = text.rfind(" (at character ");
    if (at != absl::string_view::npos && absl::EndsWith(text, ")") &&
        absl::SimpleAtoi(text.substr(at + 15, text.size() - at - 16),
                         &v.position)) {
      text = text.substr(0, at);
    }
    v.message = absl::StrCat("Warden could not parse the statement: ", text);
    v.hint = absl::StrCat(
        "Statements Warden cannot parse are refused here (policy \"",
        d.policy, "\"); fix the syntax and retry.");
    return v;
  }
  v.sqlstate = pgwire::kInsufficientPrivilege;
  if (!d.rule.empty()) {
    v.message = absl::StrCat("Warden: denied by rule \"", d.rule,
                             "\" of policy \"", d.policy, "\"");
    if (!d.message.empty()) absl::StrAppend(&v.message, ": ", d.message);
  } else if (!d.policy.empty()) {
    v.message = absl::StrCat("Warden: denied by the default of policy \"",
                             d.policy, "\"");
  } else {
    v.message = absl::StrCat("Warden: denied: ", d.reason);
  }
  return v;
}

}  // namespace warden::dataplane::gate
