#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/lang/compile.h"
#include "policy/testing/testing.h"

namespace warden::policy {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using warden::v1::POLICY_ACTION_ALLOW;
using warden::v1::POLICY_ACTION_DENY;
using warden::v1::POLICY_ACTION_REQUIRE_APPROVAL;

constexpr char kPolicies[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: production-guardrails }
spec:
  environments: [prod]
  rules:
    - name: no-drop-data-objects
      match: { commands: ["DROP TABLE"] }
      action: deny
    - name: agents-read-only
      match: { identity: { kind: agent }, classes: [write] }
      action: deny
    - name: interns-no-truncate
      match: { commands: ["TRUNCATE TABLE"], identity: { groups: [interns] } }
      action: deny
    - name: truncate-reviewed
      match: { commands: ["TRUNCATE TABLE"] }
      action: require_approval
      approval: { reviewers: ["group:db-owners"] }
---
apiVersion: warden/v1
kind: PolicyTest
metadata: { name: production-guardrails-tests }
spec:
  defaults: { environment: prod, database: shop, user: alice, kind: human }
  cases:
    - name: drop-table-denied
      sql: DROP TABLE orders
      expect: { action: deny, rule: no-drop-data-objects,
                policy: production-guardrails }
    - name: select-allowed-by-default
      sql: SELECT * FROM orders
      expect: { action: allow, rule: "" }
    - name: agent-insert-denied
      sql: INSERT INTO orders VALUES (1)
      kind: agent
      user: support-bot
      expect: { action: deny, rule: agents-read-only }
    - name: staging-has-no-policy
      sql: SELECT 1
      environment: staging
      expect: { action: deny, policy: "" }
    - name: truncate-needs-approval
      sql: TRUNCATE orders
      expect: { action: require_approval, rule: truncate-reviewed }
)";

std::vector<std::string> Lines(const std::vector<lang::Diagnostic>& diags) {
  std::vector<std::string> out;
  for (const auto& d : diags) out.push_back(d.ToString());
  return out;
}

TEST(PolicyTestingTest, LoadsSuitesDefaultsAndOverrides) {
  std::vector<lang::Diagnostic> diags;
  auto suites = testing::LoadTests({{"prod.yaml", kPolicies}}, &diags);
  ASSERT_TRUE(suites.ok()) << suites.status();
  EXPECT_TRUE(diags.empty());
  ASSERT_EQ(suites->size(), 1u);
  const testing::TestSuite& s = (*suites)[0];
  EXPECT_EQ(s.name, "production-guardrails-tests");
  EXPECT_EQ(s.file, "prod.yaml");
  ASSERT_EQ(s.cases.size(), 5u);

  const testing::TestCase& drop = s.cases[0];
  EXPECT_EQ(drop.name, "drop-table-denied");
  EXPECT_EQ(drop.source, "prod.yaml:27");
  EXPECT_EQ(drop.sql, "DROP TABLE orders");
  EXPECT_EQ(drop.environment, "prod");
  EXPECT_EQ(drop.database, "shop");
  EXPECT_EQ(drop.subject.user, "alice");
  EXPECT_EQ(drop.subject.kind, "human");
  EXPECT_EQ(drop.expect.action, POLICY_ACTION_DENY);
  EXPECT_EQ(drop.expect.rule, "no-drop-data-objects");
  EXPECT_EQ(drop.expect.policy, "production-guardrails");

  // Omitted rule/policy are not checked; "" means "a default decided".
  EXPECT_EQ(s.cases[1].expect.rule, "");
  EXPECT_FALSE(s.cases[1].expect.policy.has_value());
  EXPECT_FALSE(s.cases[3].expect.rule.has_value());

  // Per-case overrides replace the defaults for that case only.
  EXPECT_EQ(s.cases[2].subject.kind, "agent");
  EXPECT_EQ(s.cases[2].subject.user, "support-bot");
  EXPECT_EQ(s.cases[3].environment, "staging");
  EXPECT_EQ(s.cases[3].subject.kind, "human");
  EXPECT_EQ(s.cases[3].subject.user, "alice");
}

TEST(PolicyTestingTest, PassingCasesPass) {
  auto bundle = lang::Compile({{"prod.yaml", kPolicies}});
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  auto suites = testing::LoadTests({{"prod.yaml", kPolicies}});
  ASSERT_TRUE(suites.ok()) << suites.status();
  const auto results = testing::RunTests(*bundle, *suites);
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) {
    EXPECT_TRUE(r.passed) << r.name << ": "
                          << ::testing::PrintToString(r.mismatches) << " — "
                          << r.actual.reason;
    EXPECT_TRUE(r.mismatches.empty());
    EXPECT_EQ(r.suite, "production-guardrails-tests");
  }
  EXPECT_EQ(results[0].actual.rule, "no-drop-data-objects");
  EXPECT_EQ(results[2].actual.action, POLICY_ACTION_DENY);
}

TEST(PolicyTestingTest, GroupsOverrideChangesTheDecision) {
  const std::string tests = R"(apiVersion: warden/v1
kind: PolicyTest
metadata: { name: groups }
spec:
  defaults: { environment: prod, database: shop, user: bob }
  cases:
    - { name: plain, sql: TRUNCATE orders, expect: { action: require_approval } }
    - { name: intern, sql: TRUNCATE orders, groups: [oncall, interns],
        expect: { action: deny, rule: interns-no-truncate } }
    - { name: intern-scalar, sql: TRUNCATE orders, groups: interns,
        expect: { action: deny } }
)";
  auto bundle = lang::Compile({{"prod.yaml", kPolicies}});
  ASSERT_TRUE(bundle.ok());
  auto suites = testing::LoadTests({{"groups.yaml", tests}});
  ASSERT_TRUE(suites.ok()) << suites.status();
  ASSERT_EQ((*suites)[0].cases.size(), 3u);
  EXPECT_THAT((*suites)[0].cases[1].subject.groups,
              ElementsAre("oncall", "interns"));
  EXPECT_THAT((*suites)[0].cases[2].subject.groups, ElementsAre("interns"));
  for (const auto& r : testing::RunTests(*bundle, *suites)) {
    EXPECT_TRUE(r.passed) << r.name << " — " << r.actual.reason;
  }
}

TEST(PolicyTestingTest, WrongExpectationsAreFailures) {
  const std::string tests = R"(apiVersion: warden/v1
kind: PolicyTest
metadata: { name: wrong }
spec:
  defaults: { environment: prod, database: shop }
  cases:
    - name: wrong-action
      sql: DROP TABLE orders
      expect: { action: allow }
    - name: wrong-rule
      sql: DROP TABLE orders
      expect: { action: deny, rule: some-other-rule }
    - name: expected-default-but-rule-matched
      sql: DROP TABLE orders
      expect: { action: deny, rule: "" }
    - name: wrong-policy
      sql: SELECT 1
      expect: { action: allow, policy: another-policy }
    - name: unparseable-is-denied
      sql: SELEC 1
      expect: { action: allow }
)";
  auto bundle = lang::Compile({{"prod.yaml", kPolicies}});
  ASSERT_TRUE(bundle.ok());
  auto suites = testing::LoadTests({{"wrong.yaml", tests}});
  ASSERT_TRUE(suites.ok()) << suites.status();
  const auto results = testing::RunTests(*bundle, *suites);
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) EXPECT_FALSE(r.passed) << r.name;

  EXPECT_THAT(results[0].mismatches,
              ElementsAre("action: expected allow, got deny"));
  EXPECT_EQ(results[0].actual.rule, "no-drop-data-objects");
  EXPECT_EQ(results[0].expected.action, POLICY_ACTION_ALLOW);
  EXPECT_EQ(results[0].source, "wrong.yaml:7");
  EXPECT_THAT(results[1].mismatches,
              ElementsAre("rule: expected 'some-other-rule', got "
                          "'no-drop-data-objects'"));
  EXPECT_THAT(results[2].mismatches,
              ElementsAre("rule: expected (default), got "
                          "'no-drop-data-objects'"));
  EXPECT_THAT(results[3].mismatches,
              ElementsAre("policy: expected 'another-policy', got "
                          "'production-guardrails'"));
  EXPECT_THAT(results[4].actual.reason, HasSubstr("unparseable"));
}

TEST(PolicyTestingTest, UnknownKeysAndMissingFieldsAreDiagnosed) {
  const std::string tests = R"(apiVersion: warden/v1
kind: PolicyTest
metadata: { name: bad }
spec:
  defaults: { enviroment: prod, database: shop }
  cases:
    - name: one
      sql: SELECT 1
      expect: { acton: allow }
    - name: two
      sqll: SELECT 1
      expect: { action: approve }
    - name: one
      sql: SELECT 1
      kind: robot
      expect: { action: deny, rulez: x }
)";
  std::vector<lang::Diagnostic> diags;
  auto suites = testing::LoadTests({{"bad.yaml", tests}}, &diags);
  ASSERT_FALSE(suites.ok());
  const auto lines = Lines(diags);
  EXPECT_THAT(lines, Contains("bad.yaml:5:15: unknown key 'enviroment' in "
                              "defaults (hint: did you mean 'environment'?)"));
  EXPECT_THAT(lines, Contains("bad.yaml:9:17: unknown key 'acton' in expect "
                              "(hint: did you mean 'action'?)"));
  EXPECT_THAT(lines, Contains("bad.yaml:11:7: unknown key 'sqll' in case "
                              "(hint: did you mean 'sql'?)"));
  EXPECT_THAT(lines, Contains(HasSubstr("did you mean 'rule'?")));
  EXPECT_THAT(lines, Contains(HasSubstr("expect.action is required")));
  EXPECT_THAT(lines, Contains(HasSubstr("case 'two' needs sql")));
  EXPECT_THAT(lines, Contains(HasSubstr("did you mean 'require_approval'?")));
  EXPECT_THAT(lines, Contains(HasSubstr("bad.yaml:13:13: duplicate case name "
                                        "'one'")));
  EXPECT_THAT(lines, Contains(HasSubstr("kind must be human, agent or "
                                        "service")));
  // The misspelt default leaves the cases without an environment.
  EXPECT_THAT(lines, Contains(HasSubstr("case 'one' has no environment")));
  EXPECT_THAT(std::string(suites.status().message()),
              HasSubstr("bad.yaml:5:15"));
}

TEST(PolicyTestingTest, InputYamlCppCannotFinishOrNonUtf8IsADiagnostic) {
  // yaml-cpp 0.7 loops forever on a stray ',' after a top-level flow
  // collection; the test loader must fail like the policy compiler does.
  std::vector<lang::Diagnostic> diags;
  EXPECT_FALSE(testing::LoadTests({{"loop.yaml", "[a], b\n"}}, &diags).ok());
  ASSERT_FALSE(diags.empty());
  EXPECT_EQ(diags[0].file, "loop.yaml");
  EXPECT_FALSE(
      testing::LoadTests({{"bin.yaml", "kind: PolicyTest\nx: \xff\n"}}, &diags)
          .ok());
  EXPECT_THAT(Lines(diags), Contains("bin.yaml:2:4: the file is not valid "
                                     "UTF-8 (hint: policies and policy tests "
                                     "are UTF-8 text)"));
}

TEST(PolicyTestingTest, DocumentLevelProblems) {
  std::vector<lang::Diagnostic> diags;
  EXPECT_FALSE(testing::LoadTests(
                   {{"x.yaml", "kind: PolicyTest\nspec: [unclosed"}}, &diags)
                   .ok());
  ASSERT_FALSE(diags.empty());
  EXPECT_EQ(diags[0].file, "x.yaml");
  EXPECT_GT(diags[0].line, 0);

  EXPECT_FALSE(testing::LoadTests({{"y.yaml", R"(apiVersion: warden/v1
kind: PolicyTest
metadata: { name: t }
spec: { cases: [] }
specs: {}
)"}},
                                  &diags)
                   .ok());
  EXPECT_THAT(Lines(diags),
              Contains(HasSubstr("cases must be a non-empty list")));
  EXPECT_THAT(Lines(diags), Contains("y.yaml:5:1: unknown key 'specs' in "
                                     "document (hint: did you mean 'spec'?)"));

  // Only PolicyTest documents are read: a file of policies has no suites.
  auto none = testing::LoadTests({{"prod.yaml", R"(apiVersion: warden/v1
kind: Policy
metadata: { name: p }
spec: { bogus: 1 }
)"}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(PolicyTestingTest, FactsToJsonIsRecursive) {
  auto facts = sql::Analyze(
      "WITH d AS (DELETE FROM shop.orders RETURNING id) SELECT lower(x) "
      "FROM d");
  ASSERT_TRUE(facts.ok()) << facts.status();
  ASSERT_EQ(facts->size(), 1u);
  const nlohmann::json j = testing::FactsToJson((*facts).at(0));
  EXPECT_EQ(j.at("command"), "SELECT");
  EXPECT_EQ(j.at("class"), "read");
  EXPECT_EQ(j.at("node"), "SelectStmt");
  EXPECT_THAT(j.at("functions").get<std::vector<std::string>>(),
              Contains("lower"));
  ASSERT_EQ(j.at("nested").size(), 1u) << j.dump();
  const nlohmann::json& del = j.at("nested").at(0);
  EXPECT_EQ(del.at("command"), "DELETE");
  EXPECT_EQ(del.at("class"), "write");
  EXPECT_EQ(del.at("nested_via"), "cte");
  EXPECT_EQ(del.at("has_effective_filter"), false);
  EXPECT_TRUE(del.at("relations").is_array());
  EXPECT_TRUE(del.at("nested").is_array());

  auto select_facts = sql::Analyze("SELECT * FROM shop.orders WHERE id = 1");
  ASSERT_TRUE(select_facts.ok()) << select_facts.status();
  const nlohmann::json top = testing::FactsToJson(select_facts->at(0));
  ASSERT_EQ(top.at("relations").size(), 1u) << top.dump();
  EXPECT_EQ(top.at("relations").at(0).at("schema"), "shop");
  EXPECT_EQ(top.at("relations").at(0).at("name"), "orders");
  EXPECT_EQ(top.at("has_effective_filter"), true);
  EXPECT_EQ(top.at("text"), "SELECT * FROM shop.orders WHERE id = 1");
  EXPECT_THAT(top.at("columns").get<std::vector<std::string>>(),
              ElementsAre("*", "id"));

  const nlohmann::json d = testing::DecisionToJson(
      {POLICY_ACTION_REQUIRE_APPROVAL, "p", "r", "m", "why"});
  EXPECT_EQ(d["decision"], "require_approval");
  EXPECT_EQ(d["rule"], "r");
  EXPECT_EQ(testing::ActionName(POLICY_ACTION_ALLOW), "allow");
}

}  // namespace
}  // namespace warden::policy
