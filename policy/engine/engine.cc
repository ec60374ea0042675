#include "policy/engine/engine.h"

#include <fnmatch.h>

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/sql/catalog_classes.h"
#include "policy/sql/lexing.h"
#include "common/names.h"

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

// Shell glob. Most patterns in real policies are plain names or
// "prefix*", which are compared directly; fnmatch only sees the rest.
// `value` must be NUL-terminated at value[len].
bool GlobAt(const std::string& pattern, const char* value, size_t len) {
  size_t meta = 0;
  while (meta < pattern.size() && pattern[meta] != '*' && pattern[meta] != '?' &&
         pattern[meta] != '[' && pattern[meta] != '\\') {
    ++meta;
  }
  if (meta == pattern.size()) {
    return pattern.size() == len && pattern.compare(0, len, value, len) == 0;
  }
  if (meta + 1 == pattern.size() && pattern[meta] == '*') {
    return len >= meta && pattern.compare(0, meta, value, meta) == 0;
  }
  return fnmatch(pattern.c_str(), value, 0) == 0;
}

bool Glob(const std::string& pattern, const std::string& value) {
  return GlobAt(pattern, value.c_str(), value.size());
}

template <typename Container>
bool AnyGlob(const Container& patterns, const std::string& value) {
  for (const auto& p : patterns) {
    if (Glob(p, value)) return true;
  }
  return false;
}

// User names match ignoring case, as logins and the directory do: a rule
// for "alice@example.com" also holds for "Alice@Example.com".
bool AnyUserGlob(const google::protobuf::RepeatedPtrField<std::string>& globs,
                 const std::string& user) {
  const std::string lower = FoldName(user);
  for (const auto& g : globs) {
    if (fnmatch(FoldName(g).c_str(), lower.c_str(), 0) == 0) {
      return true;
    }
  }
  return false;
}

bool IdentityMatches(const warden::v1::IdentityMatch& id, const Subject& who) {
  if (!id.users().empty() && !AnyUserGlob(id.users(), who.user)) return false;
  if (!id.groups().empty()) {
    bool any = false;
    for (const auto& g : who.groups) {
      any = any || std::find(id.groups().begin(), id.groups().end(), g) !=
                       id.groups().end();
    }
    if (!any) return false;
  }
  for (const auto& [name, glob] : id.attributes()) {
    auto it = who.attributes.find(name);
    if (it == who.attributes.end() || !Glob(glob, it->second)) return false;
  }
  return id.kind().empty() || id.kind() == who.kind;
}

const std::string kPublic = "public";

// "schema.table" globs; an unqualified relation is taken as "public.name"
// and also matched by schema-less patterns.
bool ObjectMatches(const std::string& pattern, const sql::Relation& rel) {
  const size_t dot = pattern.find('.');
  if (dot == std::string::npos) return Glob(pattern, rel.name);
  const std::string& schema = rel.schema.empty() ? kPublic : rel.schema;
  // "schema-glob.name-glob" against the two parts, without building the
  // qualified name, unless dots elsewhere make the split ambiguous.
  if (pattern.find('.', dot + 1) == std::string::npos &&
      schema.find('.') == std::string::npos &&
      rel.name.find('.') == std::string::npos) {
    return Glob(pattern.substr(0, dot), schema) &&
           Glob(pattern.substr(dot + 1), rel.name);
  }
  return Glob(pattern, schema + "." + rel.name);
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

// A list of globs prepared for matching many values: exact names in a hash
// set, "prefix*" patterns, and the rest for fnmatch.
class GlobSet {
 public:
  GlobSet() = default;
  template <typename Patterns>
  explicit GlobSet(const Patterns& patterns) {
    for (const std::string& p : patterns) {
      size_t meta = 0;
      while (meta < p.size() && p[meta] != '*' && p[meta] != '?' &&
             p[meta] != '[' && p[meta] != '\\') {
        ++meta;
      }
      if (meta == p.size()) {
        exact_.insert(p);
      } else if (meta + 1 == p.size() && p[meta] == '*') {
        prefixes_.push_back(p.substr(0, meta));
      } else {
        globs_.push_back(p);
      }
      empty_ = false;
    }
  }
  bool empty() const { return empty_; }

  // `value` must be NUL-terminated at value[len] (for fnmatch).
  bool Matches(const char* value, size_t len) const {
    const absl::string_view v(value, len);
    if (!exact_.empty() && exact_.contains(v)) return true;
    for (const std::string& prefix : prefixes_) {
      if (absl::StartsWith(v, prefix)) return true;
    }
    for (const std::string& g : globs_) {
      if (fnmatch(g.c_str(), value, 0) == 0) return true;
    }
    return false;
  }
  bool Matches(const std::string& value) const {
    return Matches(value.c_str(), value.size());
  }
  // Dotted names ("o.total", "pg_catalog.now"): the whole name or its last
  // part.
  bool MatchesDotted(const std::string& name) const {
    if (Matches(name)) return true;
    const size_t dot = name.rfind('.');
    return dot != std::string::npos &&
           Matches(name.c_str() + dot + 1, name.size() - dot - 1);
  }
  template <typename Values>
  bool AnyDotted(const Values& values) const {
    for (const auto& v : values) {
      if (MatchesDotted(v)) return true;
    }
    return false;
  }
  template <typename Values>
  bool Any(const Values& values) const {
    for (const auto& v : values) {
      if (Matches(v)) return true;
    }
    return false;
  }

 private:
  absl::flat_hash_set<std::string> exact_;
  std::vector<std::string> prefixes_;
  std::vector<std::string> globs_;
  bool empty_ = true;
};

struct CompiledRule {
  explicit CompiledRule(const warden::v1::Rule& r)
      : rule(&r),
        commands(r.match().commands().begin(), r.match().commands().end()),
        classes(r.match().classes().begin(), r.match().classes().end()),
        functions(r.match().functions()),
        columns(r.match().columns()),
        settings(r.match().settings()),
        languages(r.match().languages()),
        subcommands(r.match().subcommands()),
        function_classes(r.match().function_classes().begin(),
                         r.match().function_classes().end()) {}
  const warden::v1::Rule* rule;
  absl::flat_hash_set<std::string> commands, classes;
  GlobSet functions, columns, settings, languages, subcommands;
  absl::flat_hash_set<std::string> function_classes;
};

// Whether a function called or a catalog relation named is in one of
// `classes` (policy/sql/catalog_classes.h).
bool AnyCatalogClass(const absl::flat_hash_set<std::string>& classes,
                     const sql::StatementFacts& f) {
  for (const std::string& fn : f.functions) {
    for (const std::string& c : sql::FunctionClassesOf(fn)) {
      if (classes.contains(c)) return true;
    }
  }
  for (const sql::Relation& r : f.relations) {
    for (const std::string& c : sql::RelationClassesOf(r.schema, r.name)) {
      if (classes.contains(c)) return true;
    }
  }
  return false;
}

bool RuleMatches(const CompiledRule& c, const sql::StatementFacts& f,
                 const Subject& who) {
  const warden::v1::RuleMatch& m = c.rule->match();
  if (!c.commands.empty() && !c.commands.contains(f.command)) return false;
  if (!c.classes.empty() &&
      !c.classes.contains(absl::string_view(sql::ClassName(f.statement_class)))) {
    return false;
  }
  if (!m.objects().empty() &&
      !AnyPair(m.objects(), f.relations, ObjectMatches)) {
    return false;
  }
  if (!c.functions.empty() && !c.functions.AnyDotted(f.functions)) {
    return false;
  }
  if (!c.function_classes.empty() && !AnyCatalogClass(c.function_classes, f)) {
    return false;
  }
  if (!c.columns.empty() && !c.columns.AnyDotted(f.columns)) return false;
  // A computed parameter name ("*") may be any parameter: it matches.
  if (!c.settings.empty() &&
      std::find(f.settings.begin(), f.settings.end(), "*") ==
          f.settings.end() &&
      !c.settings.Any(f.settings)) {
    return false;
  }
  if (!m.copy_modes().empty() &&
      std::find(m.copy_modes().begin(), m.copy_modes().end(), f.copy) ==
          m.copy_modes().end()) {
    return false;
  }
  if (!c.languages.empty() && !c.languages.Any(f.nested_languages)) {
    return false;
  }
  if (!c.subcommands.empty() && !c.subcommands.Any(f.subcommands)) {
    return false;
  }
  // filter: none is about statements that may touch every row: DELETE,
  // UPDATE, MERGE, INSERT ... ON CONFLICT DO UPDATE, and SELECT ... FOR
  // UPDATE / SHARE, which locks what it reads (policy/sql/filter.h).
  if (m.filter() == warden::v1::FILTER_MATCH_NONE &&
      (f.has_effective_filter ||
       (f.command != "DELETE" && f.command != "UPDATE" &&
        f.command != "MERGE" && f.command != "INSERT" &&
        f.command != "SELECT"))) {
    return false;
  }
  if (m.dynamic_sql() && !f.unresolved_dynamic_sql) return false;
  if (m.has_temporary() && m.temporary() != f.temporary) return false;
  if (m.has_identity() && !IdentityMatches(m.identity(), who)) return false;
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

// Which of two equally restrictive candidates names the decision: a
// policy that names the environment over a baseline one (no
// `environments`), then a rule that matched over a default; the first of
// equals otherwise. So adding a baseline policy never changes which policy
// an environment's own decisions are attributed to.
int Rank(bool rule, bool covering) { return (covering ? 2 : 0) + (rule ? 1 : 0); }

// The decision so far: the most restrictive candidate (the best ranked of
// equals) and the most detailed audit level of all candidates.
struct Verdict {
  Decision best;
  bool decided = false;
  int rank = 0;
  warden::v1::AuditLevel audit = warden::v1::AUDIT_LEVEL_UNSPECIFIED;

  // True when a candidate with `action` and `rank` would replace the best
  // so far; the caller then builds it (texts are only built for winners,
  // which keeps evaluation allocation-free otherwise).
  bool Wins(PolicyAction action, int candidate_rank,
            warden::v1::AuditLevel level) {
    audit = std::max(audit, level);
    if (!decided) return true;
    const int s = Severity(action), b = Severity(best.action);
    return s > b || (s == b && candidate_rank > rank);
  }
  void Consider(Decision candidate, int candidate_rank,
                warden::v1::AuditLevel level) {
    if (Wins(candidate.action, candidate_rank, level)) {
      Take(std::move(candidate), candidate_rank);
    }
  }
  void Take(Decision candidate, int candidate_rank) {
    best = std::move(candidate);
    rank = candidate_rank;
    decided = true;
  }
};

// Where a statement sits, for the decision and its reason. Nested
// statements point at their container's position (which outlives them).
struct Position {
  int statement = -1;  // 0-based, top level.
  int statements = 0;  // top-level statements in the message.
  const Position* outer = nullptr;                // null at top level.
  const sql::StatementFacts* outer_facts = nullptr;
};

// "DO via plpgsql > SELECT via cte": how `f` sits inside its containers.
std::string Via(const Position& at, const sql::StatementFacts& f) {
  std::vector<std::string> steps;
  const sql::StatementFacts* inner = &f;
  for (const Position* p = &at; p->outer != nullptr; p = p->outer) {
    steps.push_back(
        absl::StrCat(p->outer_facts->command, " via ", inner->nested_via));
    inner = p->outer_facts;
  }
  std::reverse(steps.begin(), steps.end());
  return absl::StrJoin(steps, " > ");
}

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
  d.via = Via(at, f);
  d.reason = absl::StrCat(f.command, " ", Verb(d.action), " by ",
                          rule ? "rule " + rule->name() : "default",
                          " of policy ", policy.name());
  std::vector<std::string> where;
  if (at.statements > 1) {
    where.push_back(absl::StrCat("statement ", at.statement + 1));
  }
  if (!d.via.empty()) where.push_back("inside " + d.via);
  if (!where.empty())
    absl::StrAppend(&d.reason, " (", absl::StrJoin(where, ", "), ")");
  return d;
}

struct CompiledPolicy {
  explicit CompiledPolicy(const warden::v1::Policy& p)
      : policy(&p), baseline(p.environments().empty()) {
    rules.reserve(p.rules_size());
    for (const auto& r : p.rules()) rules.emplace_back(r);
  }
  const warden::v1::Policy* policy;
  // No `environments`: its rules apply everywhere, but it opens no
  // environment (see Matcher::Evaluate).
  const bool baseline;
  std::vector<CompiledRule> rules;
};

void EvaluateStatement(const CompiledPolicy& compiled,
                       const sql::StatementFacts& f, const Subject& who,
                       const Position& at, Verdict* verdict) {
  const warden::v1::Policy& policy = *compiled.policy;
  bool matched = false;
  for (const CompiledRule& c : compiled.rules) {
    const warden::v1::Rule& rule = *c.rule;
    if (!RuleMatches(c, f, who)) continue;
    matched = true;
    const int rank = Rank(true, !compiled.baseline);
    if (verdict->Wins(rule.action(), rank,
                      Resolve(rule.audit(), policy.default_audit()))) {
      verdict->Take(Candidate(policy, &rule, f, at), rank);
    }
  }
  const int default_rank = Rank(false, !compiled.baseline);
  if (!matched &&
      verdict->Wins(policy.default_action(), default_rank,
                    Resolve(warden::v1::AUDIT_LEVEL_UNSPECIFIED,
                            policy.default_audit()))) {
    verdict->Take(Candidate(policy, nullptr, f, at), default_rank);
  }
  for (const auto& nested : f.nested) {
    Position inner = at;
    inner.outer = &at;
    inner.outer_facts = &f;
    EvaluateStatement(compiled, nested, who, inner, verdict);
  }
}

}  // namespace

struct Matcher::Compiled {
  explicit Compiled(const warden::v1::PolicyBundle& bundle) {
    policies.reserve(bundle.policies_size());
    for (const auto& p : bundle.policies()) policies.emplace_back(p);
  }
  std::vector<CompiledPolicy> policies;
};

Matcher::Matcher(const warden::v1::PolicyBundle* bundle)
    : compiled_(std::make_unique<const Compiled>(*bundle)) {}

Matcher::~Matcher() = default;

Decision Evaluate(const warden::v1::PolicyBundle& bundle,
                  const absl::StatusOr<std::vector<sql::StatementFacts>>& facts,
                  const Subject& subject, const std::string& environment,
                  const std::string& database) {
  return Matcher(&bundle).Evaluate(facts.ok() ? &*facts : nullptr,
                                   facts.status(), subject, environment,
                                   database);
}

Decision Evaluate(const warden::v1::PolicyBundle& bundle,
                  const std::vector<sql::StatementFacts>* facts,
                  const absl::Status& error, const Subject& subject,
                  const std::string& environment, const std::string& database) {
  return Matcher(&bundle).Evaluate(facts, error, subject, environment,
                                   database);
}

Decision Matcher::Evaluate(const std::vector<sql::StatementFacts>* facts,
                           const absl::Status& error, const Subject& subject,
                           const std::string& environment,
                           const std::string& database) const {
  Verdict verdict;
  // Whether a policy that names this environment applies: only such a
  // policy opens it. Baseline policies (no `environments`) add their rules
  // and defaults where one does, and are denied everywhere else.
  bool covered = false;
  for (const CompiledPolicy& compiled : compiled_->policies) {
    const warden::v1::Policy& policy = *compiled.policy;
    if (!policy.environments().empty() &&
        !AnyGlob(policy.environments(), environment)) {
      continue;
    }
    if (!policy.databases().empty() && !AnyGlob(policy.databases(), database)) {
      continue;
    }
    if (!compiled.baseline) covered = true;
    const int default_rank = Rank(false, !compiled.baseline);
    const auto policy_audit =
        Resolve(warden::v1::AUDIT_LEVEL_UNSPECIFIED, policy.default_audit());
    if (facts == nullptr) {
      Decision d;
      d.action = policy.unparseable();
      d.policy = policy.name();
      d.message = "the statement could not be parsed";
      d.reason = absl::StrCat("unparseable SQL (", error.message(),
                              "): policy ", policy.name());
      verdict.Consider(std::move(d), default_rank, policy_audit);
      continue;
    }
    if (facts->empty()) {  // an empty query string.
      Decision d;
      d.action = policy.default_action();
      d.policy = policy.name();
      d.reason = "empty query: default of policy " + policy.name();
      verdict.Consider(std::move(d), default_rank, policy_audit);
    }
    Position at;
    at.statements = static_cast<int>(facts->size());
    for (const auto& f : *facts) {
      ++at.statement;
      EvaluateStatement(compiled, f, subject, at, &verdict);
    }
  }
  if (!verdict.decided) {
    Decision d;
    d.action = warden::v1::POLICY_ACTION_DENY;
    d.reason = absl::StrCat("no policy applies to environment ", environment,
                            ", database ", database);
    return d;
  }
  if (!covered && verdict.best.action != warden::v1::POLICY_ACTION_DENY) {
    // Fail closed: a policy written for every environment (no
    // `environments`) cannot open one nobody named.
    Decision d;
    d.action = warden::v1::POLICY_ACTION_DENY;
    d.reason = absl::StrCat(
        "no policy names environment ", environment, " (database ", database,
        "); policies without `environments` add rules everywhere but open "
        "no environment");
    d.message = absl::StrCat(
        "environment ", environment,
        " is not governed by any policy; name it in a policy's "
        "`environments` (\"*\" for all)");
    d.audit = verdict.audit;
    return d;
  }
  // Built in, whatever the policies say: Warden must read every statement
  // as PostgreSQL will (policy/sql/lexing.h). A policy's own denial keeps
  // its name on the decision.
  if (facts != nullptr &&
      verdict.best.action != warden::v1::POLICY_ACTION_DENY) {
    for (size_t i = 0; i < facts->size(); ++i) {
      const std::string why = sql::LexingChangeIn((*facts)[i]);
      if (why.empty()) continue;
      Decision d;
      d.action = warden::v1::POLICY_ACTION_DENY;
      d.policy = "warden";
      d.rule = "no-parser-differential";
      d.message = absl::StrCat("Warden refuses this: ", why, ".");
      d.reason = absl::StrCat((*facts)[i].command,
                              " denied by Warden's built-in rule "
                              "no-parser-differential: ",
                              why);
      d.audit = verdict.audit;
      d.statement = static_cast<int>(i);
      d.command = (*facts)[i].command;
      return d;
    }
  }
  Decision out = std::move(verdict.best);
  out.audit = verdict.audit;
  return out;
}

namespace {

// One more entry the name is an alias of: an inactive one wins for good,
// a second active one makes the name ambiguous.
void AddAliasHolder(const warden::v1::DirectoryEntry& entry,
                    DirectoryMatch* match) {
  if (match->entry != nullptr && !match->entry->active()) return;
  if (!entry.active()) {
    *match = {&entry};
  } else if (match->entry != nullptr || match->ambiguous) {
    *match = {nullptr, /*ambiguous=*/true};
  } else {
    match->entry = &entry;
  }
}

}  // namespace

DirectoryMatch FindDirectoryEntry(const warden::v1::PolicyBundle& bundle,
                                  absl::string_view user) {
  const std::string name = FoldName(user);
  for (const auto& entry : bundle.directory()) {
    if (FoldName(entry.user_name()) == name) return {&entry};
  }
  DirectoryMatch match;
  for (const auto& entry : bundle.directory()) {
    for (const std::string& alias : entry.aliases()) {
      if (FoldName(alias) == name) {
        AddAliasHolder(entry, &match);
        break;
      }
    }
  }
  return match;
}

std::optional<absl::Time> NameReusedAt(const warden::v1::DirectoryEntry& entry,
                                       absl::string_view name) {
  auto it = entry.names_reused_unix_ms().find(FoldName(name));
  if (it != entry.names_reused_unix_ms().end()) {
    return absl::FromUnixMillis(it->second);
  }
  if (entry.name_reused_unix_ms() != 0) {
    return absl::FromUnixMillis(entry.name_reused_unix_ms());
  }
  return std::nullopt;
}

absl::flat_hash_map<std::string, DirectoryMatch> DirectoryIndex(
    const warden::v1::PolicyBundle& bundle) {
  absl::flat_hash_map<std::string, DirectoryMatch> index;
  for (const auto& entry : bundle.directory()) {
    index[FoldName(entry.user_name())] = {&entry};
  }
  // Aliases in a second pass, so a userName always wins; each entry
  // counts once per name.
  absl::flat_hash_map<std::string, DirectoryMatch> aliases;
  for (const auto& entry : bundle.directory()) {
    absl::flat_hash_set<std::string> seen;
    for (const std::string& alias : entry.aliases()) {
      std::string name = FoldName(alias);
      if (index.contains(name) || !seen.insert(name).second) continue;
      AddAliasHolder(entry, &aliases[name]);
    }
  }
  index.insert(aliases.begin(), aliases.end());
  return index;
}

RoleDecision MapRole(const warden::v1::PolicyBundle& bundle,
                     const Subject& subject, const std::string& environment,
                     const std::string& database) {
  RoleDecision d;
  for (const auto& mapping : bundle.identity_mappings()) {
    if (!mapping.environments().empty() &&
        !AnyGlob(mapping.environments(), environment)) {
      continue;
    }
    if (!mapping.databases().empty() &&
        !AnyGlob(mapping.databases(), database)) {
      continue;
    }
    d.mapped = true;
    d.mapping = mapping.name();
    for (const auto& rule : mapping.rules()) {
      if (IdentityMatches(rule.match(), subject)) {
        d.role = rule.database_role();
        d.source = rule.source();
        return d;
      }
    }
    d.role = mapping.default_role();
    d.source = mapping.source();
    if (d.role.empty()) {
      d.reason = absl::StrCat("no rule of identity mapping ", mapping.name(),
                              " (", mapping.source(), ") gives ",
                              subject.user, " a database role in ",
                              environment, "/", database);
    }
    return d;
  }
  return d;
}

}  // namespace warden::policy::engine
