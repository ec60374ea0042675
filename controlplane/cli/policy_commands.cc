#include "controlplane/cli/policy_commands.h"

#include <algorithm>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/engine/engine.h"
#include "policy/lang/sources.h"
#include "policy/sql/facts.h"
#include "policy/testing/testing.h"

namespace warden::controlplane::cli {
namespace {

using nlohmann::json;
using policy::lang::Diagnostic;
using policy::lang::SourceFile;




json DiagnosticsToJson(const std::vector<Diagnostic>& diags) {
  json out = json::array();
  for (const auto& d : diags) {
    out.push_back({{"file", d.file},
                   {"line", d.line},
                   {"column", d.column},
                   {"message", d.message},
                   {"hint", d.hint}});
  }
  return out;
}

void PrintDiagnostics(const std::vector<Diagnostic>& diags, std::ostream& err) {
  for (const auto& d : diags) err << d.ToString() << "\n";
}

// Compile and LoadTests both report YAML syntax errors and document-level
// keys; a problem is shown once.
void AppendNew(const std::vector<Diagnostic>& more,
               std::vector<Diagnostic>* diags) {
  std::set<std::string> seen;
  for (const auto& d : *diags) seen.insert(d.ToString());
  for (const auto& d : more) {
    if (seen.insert(d.ToString()).second) diags->push_back(d);
  }
}

int UsageError(const absl::Status& status, std::ostream& err) {
  err << "wardenctl: " << status.message() << "\n";
  return kExitUsage;
}

std::string Plural(int n, const char* one, const char* many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

std::string Shown(const std::string& s) {
  return s.empty() ? "(default)" : "'" + s + "'";
}

json ExpectationToJson(const policy::testing::Expectation& e) {
  json out = {{"action", policy::testing::ActionName(e.action)}};
  if (e.rule) out["rule"] = *e.rule;
  if (e.policy) out["policy"] = *e.policy;
  return out;
}

std::string ExpectationText(const policy::testing::Expectation& e) {
  std::string out = "action " + policy::testing::ActionName(e.action);
  if (e.rule) absl::StrAppend(&out, ", rule ", Shown(*e.rule));
  if (e.policy) absl::StrAppend(&out, ", policy ", Shown(*e.policy));
  return out;
}

void PrintFacts(const policy::sql::StatementFacts& f, const std::string& indent,
                std::ostream& out) {
  out << indent << "- " << f.command << " ["
      << policy::sql::ClassName(f.statement_class) << "]";
  if (!f.nested_via.empty()) out << " via " << f.nested_via;
  out << "\n";
  const std::string more = indent + "  ";
  if (!f.text.empty()) out << more << "text: " << f.text << "\n";
  if (!f.relations.empty()) {
    std::vector<std::string> names;
    for (const auto& r : f.relations) {
      names.push_back(r.schema.empty() ? r.name : r.schema + "." + r.name);
    }
    out << more << "relations: " << absl::StrJoin(names, ", ") << "\n";
  }
  if (!f.functions.empty()) {
    out << more << "functions: " << absl::StrJoin(f.functions, ", ") << "\n";
  }
  if (!f.columns.empty()) {
    out << more << "columns: " << absl::StrJoin(f.columns, ", ") << "\n";
  }
  if (!f.has_effective_filter) out << more << "effective filter: no\n";
  if (!f.nested_languages.empty()) {
    out << more << "languages: " << absl::StrJoin(f.nested_languages, ", ")
        << "\n";
  }
  if (f.unresolved_dynamic_sql) out << more << "dynamic SQL: unresolved\n";
  for (const auto& n : f.nested) PrintFacts(n, more, out);
}

}  // namespace

int RunValidate(const ValidateOptions& options, std::ostream& out,
                std::ostream& err) {
  auto files = policy::lang::ReadSources(options.paths);
  if (!files.ok()) return UsageError(files.status(), err);
  std::vector<Diagnostic> diags;
  auto bundle = policy::lang::Compile(*files, &diags);
  // Test documents in the same files must be valid too: a typo there would
  // otherwise only show in `policy test`.
  std::vector<Diagnostic> test_diags;
  (void)policy::testing::LoadTests(*files, &test_diags);
  AppendNew(test_diags, &diags);
  policy::lang::ShowLocalPaths(*files, &diags);
  const bool valid = bundle.ok() && diags.empty();
  int rules = 0;
  if (bundle.ok()) {
    for (const auto& p : bundle->policies()) rules += p.rules_size();
  }
  if (options.format == Format::kJson) {
    json j = {{"valid", valid}, {"diagnostics", DiagnosticsToJson(diags)}};
    if (valid) {
      j["policies"] = bundle->policies_size();
      j["rules"] = rules;
      j["digest"] = bundle->digest();
    }
    out << j.dump(2) << "\n";
  } else if (!valid) {
    PrintDiagnostics(diags, err);
    err << "invalid: "
        << Plural(static_cast<int>(diags.size()), "problem", "problems")
        << "\n";
  } else {
    out << "valid: " << Plural(bundle->policies_size(), "policy", "policies")
        << ", " << Plural(rules, "rule", "rules") << ", digest "
        << bundle->digest() << "\n";
  }
  return valid ? kExitOk : kExitFailed;
}

int RunTest(const TestOptions& options, std::ostream& out, std::ostream& err) {
  auto files = policy::lang::ReadSources(options.paths);
  if (!files.ok()) return UsageError(files.status(), err);
  std::vector<Diagnostic> diags;
  auto bundle = policy::lang::Compile(*files, &diags);
  std::vector<Diagnostic> test_diags;
  auto suites = policy::testing::LoadTests(*files, &test_diags);
  AppendNew(test_diags, &diags);
  policy::lang::ShowLocalPaths(*files, &diags);

  std::vector<policy::testing::CaseResult> results;
  if (diags.empty() && bundle.ok() && suites.ok()) {
    results = policy::testing::RunTests(*bundle, *suites);
  }
  int passed = 0, failed = 0;
  for (const auto& r : results) ++(r.passed ? passed : failed);
  const bool no_cases = diags.empty() && results.empty();

  if (options.format == Format::kJson) {
    json list = json::array();
    for (const auto& r : results) {
      list.push_back({{"suite", r.suite},
                      {"name", r.name},
                      {"source", r.source},
                      {"sql", r.sql},
                      {"passed", r.passed},
                      {"expected", ExpectationToJson(r.expected)},
                      {"actual", policy::testing::DecisionToJson(r.actual)},
                      {"mismatches", r.mismatches}});
    }
    json j = {{"passed", passed},
              {"failed", failed},
              {"diagnostics", DiagnosticsToJson(diags)},
              {"results", std::move(list)}};
    if (no_cases) j["error"] = "no PolicyTest cases found";
    out << j.dump(2) << "\n";
  } else {
    PrintDiagnostics(diags, err);
    for (const auto& r : results) {
      if (r.passed) continue;
      out << "FAIL " << r.suite << "/" << r.name << " (" << r.source << ")\n"
          << "  sql:      " << r.sql << "\n"
          << "  expected: " << ExpectationText(r.expected) << "\n"
          << "  actual:   action "
          << policy::testing::ActionName(r.actual.action) << ", rule "
          << Shown(r.actual.rule) << ", policy " << Shown(r.actual.policy)
          << "\n";
      for (const auto& m : r.mismatches) out << "  mismatch: " << m << "\n";
      out << "  reason:   " << r.actual.reason << "\n";
    }
    if (no_cases) {
      err << "wardenctl: no PolicyTest cases found in the given files\n";
    }
    if (!diags.empty()) {
      err << "invalid: "
          << Plural(static_cast<int>(diags.size()), "problem", "problems")
          << "; no test was run\n";
    }
    out << passed << " passed, " << failed << " failed\n";
  }
  return diags.empty() && !no_cases && failed == 0 ? kExitOk : kExitFailed;
}

int RunEval(const EvalOptions& options, std::istream& in, std::ostream& out,
            std::ostream& err) {
  if (options.kind != "human" && options.kind != "agent" &&
      options.kind != "service") {
    return UsageError(
        absl::InvalidArgumentError("--kind must be human, agent or service"),
        err);
  }
  std::string sql = options.sql;
  if (sql == "-") {
    std::ostringstream buffer;
    buffer << in.rdbuf();
    sql = buffer.str();
  }
  auto files = policy::lang::ReadSources(options.policy_paths);
  if (!files.ok()) return UsageError(files.status(), err);
  std::vector<Diagnostic> diags;
  auto bundle = policy::lang::Compile(*files, &diags);
  policy::lang::ShowLocalPaths(*files, &diags);
  if (!bundle.ok()) {
    if (options.format == Format::kJson) {
      out << json({{"valid", false}, {"diagnostics", DiagnosticsToJson(diags)}})
                 .dump(2)
          << "\n";
    } else {
      PrintDiagnostics(diags, err);
    }
    return kExitFailed;
  }
  const auto facts = policy::sql::Analyze(sql);
  const policy::engine::Subject subject{options.user, options.groups,
                                        options.kind};
  const policy::engine::Decision d = policy::engine::Evaluate(
      *bundle, facts, subject, options.environment, options.database);

  if (options.format == Format::kJson) {
    json j = policy::testing::DecisionToJson(d);
    json statements = json::array();
    if (facts.ok()) {
      for (const auto& f : *facts) {
        statements.push_back(policy::testing::FactsToJson(f));
      }
    } else {
      j["error"] = std::string(facts.status().message());
    }
    j["statements"] = std::move(statements);
    out << j.dump(2) << "\n";
  } else {
    out << "decision: " << policy::testing::ActionName(d.action) << "\n"
        << "policy:   " << d.policy << "\n"
        << "rule:     " << d.rule << "\n"
        << "message:  " << d.message << "\n"
        << "reason:   " << d.reason << "\n";
    if (!facts.ok()) {
      out << "error:    " << facts.status().message() << "\n";
    } else {
      out << "statements:\n";
      for (const auto& f : *facts) PrintFacts(f, "  ", out);
    }
  }
  switch (d.action) {
    case warden::v1::POLICY_ACTION_ALLOW:
      return kExitOk;
    case warden::v1::POLICY_ACTION_REQUIRE_APPROVAL:
      return kExitRequiresApproval;
    default:
      return kExitDenied;
  }
}

}  // namespace warden::controlplane::cli
