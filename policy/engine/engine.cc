#include "policy/engine/engine.h"

#include <fnmatch.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

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

bool FunctionMatches(const std::string& pattern, const std::string& fn) {
  if (Glob(pattern, fn)) return true;
  const size_t dot = fn.rfind('.');
  return dot != std::string::npos && Glob(pattern, fn.substr(dot + 1));
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
  if (!m.objects().empty()) {
    bool any = false;
    for (const auto& p : m.objects()) {
      for (const auto& r : f.relations) any = any || ObjectMatches(p, r);
    }
    if (!any) return false;
  }
  if (!m.functions().empty()) {
    bool any = false;
    for (const auto& p : m.functions()) {
      for (const auto& fn : f.functions) any = any || FunctionMatches(p, fn);
    }
    if (!any) return false;
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

void Consider(Decision* best, bool* decided, Decision candidate) {
  if (!*decided || Severity(candidate.action) > Severity(best->action)) {
    *best = std::move(candidate);
    *decided = true;
  }
}

void EvaluateStatement(const warden::v1::Policy& policy,
                       const sql::StatementFacts& f, const Subject& who,
                       Decision* best, bool* decided) {
  bool matched = false;
  for (const auto& rule : policy.rules()) {
    if (!RuleMatches(rule.match(), f, who)) continue;
    matched = true;
    Consider(best, decided,
             Decision{rule.action(), policy.name(), rule.name(), rule.message(),
                      absl::StrCat(f.command, " matched rule ", rule.name(),
                                   " of policy ", policy.name())});
  }
  if (!matched) {
    Consider(best, decided,
             Decision{policy.default_action(), policy.name(), "", "",
                      absl::StrCat(f.command, ": default of policy ",
                                   policy.name())});
  }
  for (const auto& nested : f.nested) {
    EvaluateStatement(policy, nested, who, best, decided);
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
  Decision best;
  bool decided = false;
  for (const auto& policy : bundle.policies()) {
    if (!policy.environments().empty() &&
        !AnyGlob(policy.environments(), environment)) {
      continue;
    }
    if (!policy.databases().empty() && !AnyGlob(policy.databases(), database)) {
      continue;
    }
    if (facts == nullptr) {
      Consider(
          &best, &decided,
          Decision{policy.unparseable(), policy.name(), "",
                   "the statement could not be parsed",
                   absl::StrCat("unparseable SQL (", error.message(),
                                "): policy ", policy.name())});
      continue;
    }
    if (facts->empty()) {  // an empty query string.
      Consider(&best, &decided,
               Decision{policy.default_action(), policy.name(), "", "",
                        "empty query: default of policy " + policy.name()});
    }
    for (const auto& f : *facts) {
      EvaluateStatement(policy, f, subject, &best, &decided);
    }
  }
  if (!decided) {
    best.action = warden::v1::POLICY_ACTION_DENY;
    best.reason = absl::StrCat("no policy applies to environment ", environment,
                               ", database ", database);
  }
  return best;
}

}  // namespace warden::policy::engine
