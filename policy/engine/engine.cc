#include "policy/engine/engine.h"

#include <fnmatch.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace warden::policy::engine {
namespace {

using warden::v1::PolicyAction;

int Severity(PolicyAction a) {
  switch (a) {
    case warden::v1::POLICY_ACTION_ALLOW:
      return 0;
    case warden::v1::POLICY_ACTION_REQUIRE_APPROVAL:
      return 1;
    default:
      return 2;  // deny, and anything unspecified fails closed.
  }
}

bool Glob(const std::string& pattern, const std::string& value) {
  return fnmatch(pattern.c_str(), value.c_str(), 0) == 0;
}

template <typename Container>
bool AnyGlob(const Container& patterns, const std::string& value) {
  for (const auto& p : patterns) {
    if (Glob(p, value)) return true;
  }
  return false;
}

// "schema.table" globs; an unqualified relation is taken as "public.name"
// and also matched by schema-less patterns.
bool ObjectMatches(const std::string& pattern, const sql::Relation& rel) {
  if (pattern.find('.') == std::string::npos) return Glob(pattern, rel.name);
  const std::string schema = rel.schema.empty() ? "public" : rel.schema;
  return Glob(pattern, schema + "." + rel.name);
}

// Globs against dotted names ("o.total", "pg_catalog.now"): the whole name
// or its last part.
bool DottedMatches(const std::string& pattern, const std::string& name) {
  if (Glob(pattern, name)) return true;
  const size_t dot = name.rfind('.');
  return dot != std::string::npos && Glob(pattern, name.substr(dot + 1));
}

template <typename Patterns, typename Values, typename Pred>
bool AnyPair(const Patterns& patterns, const Values& values, Pred pred) {
  for (const auto& p : patterns) {
    for (const auto& v : values) {
      if (pred(p, v)) return true;
    }
  }
  return false;
}

bool RuleMatches(const warden::v1::RuleMatch& m, const sql::StatementFacts& f,
                 const Subject& who) {
  if (!m.commands().empty() &&
      std::find(m.commands().begin(), m.commands().end(), f.command) ==
          m.commands().end()) {
    return false;
  }
  if (!m.classes().empty() &&
      std::find(m.classes().begin(), m.classes().end(),
                sql::ClassName(f.statement_class)) == m.classes().end()) {
    return false;
  }
  if (!m.objects().empty() &&
      !AnyPair(m.objects(), f.relations, ObjectMatches)) {
    return false;
  }
  if (!m.functions().empty() &&
      !AnyPair(m.functions(), f.functions, DottedMatches)) {
    return false;
  }
  if (!m.columns().empty() && !AnyPair(m.columns(), f.columns, DottedMatches)) {
    return false;
  }
  // A computed parameter name ("*") may be any parameter: it matches.
  if (!m.settings().empty() &&
      !AnyPair(m.settings(), f.settings,
               [](const std::string& p, const std::string& s) {
                 return s == "*" || Glob(p, s);
               })) {
    return false;
  }
  if (!m.copy_modes().empty() &&
      std::find(m.copy_modes().begin(), m.copy_modes().end(), f.copy) ==
          m.copy_modes().end()) {
    return false;
  }
  if (!m.languages().empty() &&
      !AnyPair(m.languages(), f.nested_languages, Glob)) {
    return false;
  }
  if (!m.subcommands().empty() &&
      !AnyPair(m.subcommands(), f.subcommands, Glob)) {
    return false;
  }
  if (m.filter() == warden::v1::FILTER_MATCH_NONE &&
      (f.has_effective_filter ||
       (f.command != "DELETE" && f.command != "UPDATE" &&
        f.command != "MERGE"))) {
    return false;
  }
  if (m.dynamic_sql() && !f.unresolved_dynamic_sql) return false;
  if (m.has_identity()) {
    const auto& id = m.identity();
    if (!id.users().empty() && !AnyGlob(id.users(), who.user)) return false;
    if (!id.groups().empty()) {
      bool any = false;
      for (const auto& g : who.groups) {
        any = any || std::find(id.groups().begin(), id.groups().end(), g) !=
                         id.groups().end();
      }
      if (!any) return false;
    }
    if (!id.kind().empty() && id.kind() != who.kind) return false;
  }
  return true;
}

warden::v1::AuditLevel Resolve(warden::v1::AuditLevel rule,
                               warden::v1::AuditLevel policy_default) {
  if (rule != warden::v1::AUDIT_LEVEL_UNSPECIFIED) return rule;
  if (policy_default != warden::v1::AUDIT_LEVEL_UNSPECIFIED) {
    return policy_default;
  }
  return warden::v1::AUDIT_LEVEL_FULL;
}

const char* Verb(PolicyAction a) {
  switch (Severity(a)) {
    case 0:
      return "allowed";
    case 1:
      return "requires approval";
    default:
      return "denied";
  }
}

// The decision so far: the most restrictive candidate (the first of equals)
// and the most detailed audit level of all candidates.
struct Verdict {
  Decision best;
  bool decided = false;
  warden::v1::AuditLevel audit = warden::v1::AUDIT_LEVEL_UNSPECIFIED;

  void Consider(Decision candidate, warden::v1::AuditLevel level) {
    audit = std::max(audit, level);
    if (!decided || Severity(candidate.action) > Severity(best.action)) {
      best = std::move(candidate);
      decided = true;
    }
  }
};

// Where a statement sits, for the decision and its reason.
struct Position {
  int statement = -1;  // 0-based, top level.
  int statements = 0;  // top-level statements in the message.
  std::string via;     // "" at top level.
};

Decision Candidate(const warden::v1::Policy& policy,
                   const warden::v1::Rule* rule, const sql::StatementFacts& f,
                   const Position& at) {
  Decision d;
  d.action = rule ? rule->action() : policy.default_action();
  d.policy = policy.name();
  d.rule = rule ? rule->name() : "";
  d.message = rule ? rule->message() : "";
  d.statement = at.statement;
  d.command = f.command;
  d.via = at.via;
  d.reason = absl::StrCat(f.command, " ", Verb(d.action), " by ",
                          rule ? "rule " + rule->name() : "default",
                          " of policy ", policy.name());
  std::vector<std::string> where;
  if (at.statements > 1) {
    where.push_back(absl::StrCat("statement ", at.statement + 1));
  }
  if (!at.via.empty()) where.push_back("inside " + at.via);
  if (!where.empty())
    absl::StrAppend(&d.reason, " (", absl::StrJoin(where, ", "), ")");
  return d;
}

void EvaluateStatement(const warden::v1::Policy& policy,
                       const sql::StatementFacts& f, const Subject& who,
                       const Position& at, Verdict* verdict) {
  bool matched = false;
  for (const auto& rule : policy.rules()) {
    if (!RuleMatches(rule.match(), f, who)) continue;
    matched = true;
    verdict->Consider(Candidate(policy, &rule, f, at),
                      Resolve(rule.audit(), policy.default_audit()));
  }
  if (!matched) {
    verdict->Consider(
        Candidate(policy, nullptr, f, at),
        Resolve(warden::v1::AUDIT_LEVEL_UNSPECIFIED, policy.default_audit()));
  }
  for (const auto& nested : f.nested) {
    Position inner = at;
    inner.via = absl::StrCat(at.via, at.via.empty() ? "" : " > ", f.command,
                             " via ", nested.nested_via);
    EvaluateStatement(policy, nested, who, inner, verdict);
  }
}

}  // namespace

Decision Evaluate(const warden::v1::PolicyBundle& bundle,
                  const absl::StatusOr<std::vector<sql::StatementFacts>>& facts,
                  const Subject& subject, const std::string& environment,
                  const std::string& database) {
  return Evaluate(bundle, facts.ok() ? &*facts : nullptr, facts.status(),
                  subject, environment, database);
}

Decision Evaluate(const warden::v1::PolicyBundle& bundle,
                  const std::vector<sql::StatementFacts>* facts,
                  const absl::Status& error, const Subject& subject,
                  const std::string& environment, const std::string& database) {
  Verdict verdict;
  for (const auto& policy : bundle.policies()) {
    if (!policy.environments().empty() &&
        !AnyGlob(policy.environments(), environment)) {
      continue;
    }
    if (!policy.databases().empty() && !AnyGlob(policy.databases(), database)) {
      continue;
    }
    const auto policy_audit =
        Resolve(warden::v1::AUDIT_LEVEL_UNSPECIFIED, policy.default_audit());
    if (facts == nullptr) {
      Decision d;
      d.action = policy.unparseable();
      d.policy = policy.name();
      d.message = "the statement could not be parsed";
      d.reason = absl::StrCat("unparseable SQL (", error.message(),
                              "): policy ", policy.name());
      verdict.Consider(std::move(d), policy_audit);
      continue;
    }
    if (facts->empty()) {  // an empty query string.
      Decision d;
      d.action = policy.default_action();
      d.policy = policy.name();
      d.reason = "empty query: default of policy " + policy.name();
      verdict.Consider(std::move(d), policy_audit);
    }
    Position at;
    at.statements = static_cast<int>(facts->size());
    for (const auto& f : *facts) {
      ++at.statement;
      EvaluateStatement(policy, f, subject, at, &verdict);
    }
  }
  if (!verdict.decided) {
    Decision d;
    d.action = warden::v1::POLICY_ACTION_DENY;
    d.reason = absl::StrCat("no policy applies to environment ", environment,
                            ", database ", database);
    return d;
  }
  Decision out = std::move(verdict.best);
  out.audit = verdict.audit;
  return out;
}

}  // namespace warden::policy::engine
