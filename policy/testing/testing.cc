#include "policy/testing/testing.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <initializer_list>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/lang/yaml_source.h"

namespace warden::policy::testing {
namespace {

using warden::v1::PolicyAction;

// Identity and place of a case, as given by spec.defaults and overridden
// per case. Unset fields stay nullopt so that "missing" can be reported.
struct Context {
  std::optional<std::string> environment;
  std::optional<std::string> database;
  std::optional<std::string> user;
  std::optional<std::vector<std::string>> groups;
  std::optional<std::string> kind;
};

// Reads the PolicyTest documents of one file; same diagnostic style as
// policy/lang (file:line:column, "did you mean" for unknown keys).
class Loader : public lang::DiagnosticSink {
 public:
  using DiagnosticSink::DiagnosticSink;

  std::optional<std::string> String(const YAML::Node& node,
                                    const std::string& what) {
    if (!node) return std::nullopt;
    if (!node.IsScalar()) {
      Error(node, what + " must be a string");
      return std::nullopt;
    }
    return node.Scalar();
  }

  // Reads environment/database/user/groups/kind present in `node` over
  // `base`.
  Context Overrides(const YAML::Node& node, Context base) {
    if (auto v = String(node["environment"], "environment")) {
      base.environment = *v;
    }
    if (auto v = String(node["database"], "database")) base.database = *v;
    if (auto v = String(node["user"], "user")) base.user = *v;
    if (auto v = Strings(node["groups"], "groups")) base.groups = *v;
    if (auto v = String(node["kind"], "kind")) {
      if (*v != "human" && *v != "agent" && *v != "service") {
        Error(node["kind"], "kind must be human, agent or service");
      }
      base.kind = *v;
    }
    return base;
  }

  void LoadExpect(const YAML::Node& node, Expectation* expect) {
    if (!Map(node, "expect", {"action", "rule", "policy"})) return;
    if (!node["action"]) {
      Error(node, "expect.action is required",
            "action: allow, deny or require_approval");
    } else {
      const std::string v =
          node["action"].IsScalar() ? node["action"].Scalar() : "";
      if (v == "allow") {
        expect->action = warden::v1::POLICY_ACTION_ALLOW;
      } else if (v == "deny") {
        expect->action = warden::v1::POLICY_ACTION_DENY;
      } else if (v == "require_approval") {
        expect->action = warden::v1::POLICY_ACTION_REQUIRE_APPROVAL;
      } else {
        Error(node["action"],
              "expect.action must be allow, deny or "
              "require_approval",
              v == "approve" || v == "approval"
                  ? "did you mean 'require_approval'?"
                  : "");
      }
    }
    // `rule: ""` and `rule:` (null) both mean "a default decided".
    if (const YAML::Node r = node["rule"]) {
      if (r.IsNull()) {
        expect->rule = "";
      } else {
        expect->rule = String(r, "expect.rule");
      }
    }
    if (const YAML::Node p = node["policy"]) {
      expect->policy = p.IsNull() ? std::optional<std::string>("")
                                  : String(p, "expect.policy");
    }
  }

  void LoadCase(const YAML::Node& node, const Context& defaults,
                std::set<std::string>* names, TestSuite* suite) {
    if (!Map(node, "case",
             {"name", "sql", "expect", "environment", "database", "user",
              "groups", "kind"})) {
      return;
    }
    TestCase c;
    c.source = absl::StrCat(file(), ":", node.Mark().line + 1);
    if (auto name = String(node["name"], "name"); name && !name->empty()) {
      c.name = *name;
      if (!names->insert(c.name).second) {
        Error(node["name"], "duplicate case name '" + c.name + "'");
      }
    } else if (!node["name"]) {
      Error(node, "case needs a name", "names appear in test reports");
    }
    if (auto sql = String(node["sql"], "sql")) {
      c.sql = *sql;
    } else if (!node["sql"]) {
      Error(node, "case '" + c.name + "' needs sql");
    }
    if (const YAML::Node e = node["expect"]) {
      LoadExpect(e, &c.expect);
    } else {
      Error(node, "case '" + c.name + "' needs expect",
            "expect: { action: deny, rule: ... }");
    }
    const Context ctx = Overrides(node, defaults);
    if (!ctx.environment) {
      Error(node, "case '" + c.name + "' has no environment",
            "set spec.defaults.environment or the case's environment");
    }
    if (!ctx.database) {
      Error(node, "case '" + c.name + "' has no database",
            "set spec.defaults.database or the case's database");
    }
    c.environment = ctx.environment.value_or("");
    c.database = ctx.database.value_or("");
    c.subject.user = ctx.user.value_or("");
    c.subject.groups = ctx.groups.value_or(std::vector<std::string>{});
    c.subject.kind = ctx.kind.value_or("human");
    suite->cases.push_back(std::move(c));
  }

  void LoadDocument(const YAML::Node& doc, std::vector<TestSuite>* out) {
    if (!doc || doc.IsNull() || !doc.IsMap()) return;  // policy/lang says.
    if (!doc["kind"] || !doc["kind"].IsScalar() ||
        doc["kind"].Scalar() != "PolicyTest") {
      return;
    }
    if (!Map(doc, "document", {"apiVersion", "kind", "metadata", "spec"})) {
      return;
    }
    if (!doc["apiVersion"] || !doc["apiVersion"].IsScalar() ||
        doc["apiVersion"].Scalar() != "warden/v1") {
      Error(doc["apiVersion"] ? doc["apiVersion"] : doc,
            "apiVersion must be warden/v1");
    }
    TestSuite suite;
    suite.file = file();
    const YAML::Node meta = doc["metadata"];
    if (!meta || !Map(meta, "metadata", {"name"}) || !meta["name"] ||
        !meta["name"].IsScalar()) {
      Error(meta ? meta : doc, "metadata.name is required");
    } else {
      suite.name = meta["name"].Scalar();
    }
    const YAML::Node spec = doc["spec"];
    if (!spec) {
      Error(doc, "spec is required");
      return;
    }
    if (!Map(spec, "spec", {"defaults", "cases"})) return;
    Context defaults;
    if (const YAML::Node d = spec["defaults"]) {
      if (Map(d, "defaults",
              {"environment", "database", "user", "groups", "kind"})) {
        defaults = Overrides(d, defaults);
      }
    }
    const YAML::Node cases = spec["cases"];
    if (!cases || !cases.IsSequence() || cases.size() == 0) {
      Error(cases ? cases : spec, "cases must be a non-empty list");
    } else {
      std::set<std::string> names;
      for (const auto& c : cases) LoadCase(c, defaults, &names, &suite);
    }
    out->push_back(std::move(suite));
  }
};

std::string Quoted(const std::optional<std::string>& s) {
  return s->empty() ? "(default)" : "'" + *s + "'";
}

}  // namespace

absl::StatusOr<std::vector<TestSuite>> LoadTests(
    const std::vector<lang::SourceFile>& files,
    std::vector<lang::Diagnostic>* diagnostics) {
  std::vector<lang::Diagnostic> local;
  std::vector<lang::Diagnostic>* out = diagnostics ? diagnostics : &local;
  out->clear();
  std::vector<TestSuite> suites;
  std::set<std::string> suite_names;
  for (const lang::SourceFile& file : files) {
    Loader loader(file.name, out);
    std::vector<YAML::Node> docs;
    if (!lang::LoadDocuments(file, &docs, out)) continue;
    for (const auto& doc : docs) {
      const size_t before = suites.size();
      loader.LoadDocument(doc, &suites);
      if (suites.size() > before && !suites.back().name.empty() &&
          !suite_names.insert(suites.back().name).second) {
        loader.Error(doc["metadata"]["name"],
                     "duplicate PolicyTest name '" + suites.back().name + "'");
      }
    }
  }
  if (!out->empty()) {
    std::vector<std::string> lines;
    for (const auto& d : *out) lines.push_back(d.ToString());
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }
  return suites;
}

std::vector<CaseResult> RunTests(const warden::v1::PolicyBundle& bundle,
                                 const std::vector<TestSuite>& suites) {
  std::vector<CaseResult> results;
  for (const TestSuite& suite : suites) {
    for (const TestCase& c : suite.cases) {
      CaseResult r;
      r.suite = suite.name;
      r.name = c.name;
      r.source = c.source;
      r.sql = c.sql;
      r.expected = c.expect;
      r.actual = engine::Evaluate(bundle, sql::Analyze(c.sql), c.subject,
                                  c.environment, c.database);
      if (r.actual.action != c.expect.action) {
        r.mismatches.push_back(
            absl::StrCat("action: expected ", ActionName(c.expect.action),
                         ", got ", ActionName(r.actual.action)));
      }
      if (c.expect.rule && *c.expect.rule != r.actual.rule) {
        r.mismatches.push_back(
            absl::StrCat("rule: expected ", Quoted(c.expect.rule), ", got ",
                         Quoted(std::optional<std::string>(r.actual.rule))));
      }
      if (c.expect.policy && *c.expect.policy != r.actual.policy) {
        r.mismatches.push_back(
            absl::StrCat("policy: expected ", Quoted(c.expect.policy), ", got ",
                         Quoted(std::optional<std::string>(r.actual.policy))));
      }
      r.passed = r.mismatches.empty();
      results.push_back(std::move(r));
    }
  }
  return results;
}

std::string ActionName(PolicyAction action) {
  switch (action) {
    case warden::v1::POLICY_ACTION_ALLOW:
      return "allow";
    case warden::v1::POLICY_ACTION_DENY:
      return "deny";
    case warden::v1::POLICY_ACTION_REQUIRE_APPROVAL:
      return "require_approval";
    default:
      return "unspecified";
  }
}

std::string AuditName(warden::v1::AuditLevel level) {
  switch (level) {
    case warden::v1::AUDIT_LEVEL_METADATA:
      return "metadata";
    case warden::v1::AUDIT_LEVEL_NORMALIZED:
      return "normalized";
    case warden::v1::AUDIT_LEVEL_FULL:
      return "full";
    default:
      return "unspecified";
  }
}

nlohmann::json FactsToJson(const sql::StatementFacts& f) {
  nlohmann::json relations = nlohmann::json::array();
  for (const auto& r : f.relations) {
    relations.push_back({{"schema", r.schema}, {"name", r.name}});
  }
  nlohmann::json nested = nlohmann::json::array();
  for (const auto& n : f.nested) nested.push_back(FactsToJson(n));
  nlohmann::json out = nlohmann::json::object();
  out["node"] = f.node;
  out["command"] = f.command;
  out["class"] = sql::ClassName(f.statement_class);
  out["relations"] = std::move(relations);
  out["functions"] = f.functions;
  out["columns"] = f.columns;
  out["has_effective_filter"] = f.has_effective_filter;
  out["settings"] = f.settings;
  out["copy"] = f.copy;
  out["subcommands"] = f.subcommands;
  out["prepared_name"] = f.prepared_name;
  out["executed"] = f.executed;
  out["text"] = f.text;
  out["fingerprint"] = f.fingerprint;
  out["nested_via"] = f.nested_via;
  out["nested_languages"] = f.nested_languages;
  out["unresolved_dynamic_sql"] = f.unresolved_dynamic_sql;
  out["temporary"] = f.temporary;
  out["nested"] = std::move(nested);
  return out;
}

nlohmann::json DecisionToJson(const engine::Decision& d) {
  return {{"decision", ActionName(d.action)},
          {"policy", d.policy},
          {"rule", d.rule},
          {"message", d.message},
          {"reason", d.reason},
          {"audit", AuditName(d.audit)}};
}

}  // namespace warden::policy::testing
