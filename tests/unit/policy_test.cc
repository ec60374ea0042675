#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/engine/engine.h"
#include "policy/lang/compile.h"
#include "policy/sql/facts.h"

namespace warden::policy {
namespace {

using ::testing::HasSubstr;
using warden::v1::POLICY_ACTION_ALLOW;
using warden::v1::POLICY_ACTION_DENY;
using warden::v1::POLICY_ACTION_REQUIRE_APPROVAL;

constexpr char kProd[] = R"(apiVersion: warden/v1
kind: Policy
metadata:
  name: production-guardrails
spec:
  environments: [prod]
  databases: ["*"]
  defaults:
    action: allow
    unparseable: deny
  rules:
    - name: no-destructive-ddl
      match:
        commands: ["DROP TABLE", "DROP SCHEMA", "TRUNCATE TABLE", "ALTER SYSTEM"]
      action: deny
      message: Destructive DDL is blocked in production.
    - name: unbounded-writes
      match:
        commands: [DELETE, UPDATE, MERGE]
        filter: none
      action: deny
      message: Writes without a WHERE clause are blocked.
    - name: superuser-functions
      match:
        functions: [pg_terminate_backend, pg_read_file, "lo_*"]
      action: deny
    - name: dynamic-sql
      match:
        dynamic_sql: true
      action: deny
    - name: agents-read-only
      match:
        identity: { kind: agent }
        classes: [write, ddl, dcl]
      action: deny
      message: AI agents may only read in production.
    - name: schema-changes-reviewed
      match:
        classes: [ddl, dcl]
      action: require_approval
      approval:
        reviewers: ["group:db-owners"]
        approvals: 1
        expires: 30m
---
apiVersion: warden/v1
kind: PolicyTest
metadata:
  name: skipped-by-the-compiler
spec: {}
)";

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bundle = lang::Compile({{"prod.yaml", kProd}});
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    bundle_ = *bundle;
  }
  engine::Decision Eval(const std::string& sql,
                        engine::Subject who = {"alice", {"engineers"}, "human"},
                        const std::string& env = "prod") {
    return engine::Evaluate(bundle_, sql::Analyze(sql), who, env, "shop");
  }
  warden::v1::PolicyBundle bundle_;
};

TEST_F(PolicyTest, CompilesWithDigestAndRuleSources) {
  ASSERT_EQ(bundle_.policies_size(), 1);
  EXPECT_EQ(bundle_.digest().size(), 64u);
  EXPECT_EQ(bundle_.policies(0).rules_size(), 6);
  EXPECT_EQ(bundle_.policies(0).rules(0).source(), "prod.yaml:12");
  EXPECT_EQ(bundle_.policies(0).rules(5).approval().expires_seconds(), 1800);
  // Same sources, same digest; a changed rule, another digest.
  auto again = lang::Compile({{"prod.yaml", kProd}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->digest(), bundle_.digest());
  std::string changed = kProd;
  changed.replace(changed.find("deny\n      message: Destructive"), 4, "allow");
  auto other = lang::Compile({{"prod.yaml", changed}});
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->digest(), bundle_.digest());
}

TEST_F(PolicyTest, Decisions) {
  struct Case {
    const char* sql;
    warden::v1::PolicyAction action;
    const char* rule;
  };
  const Case cases[] = {
      {"SELECT * FROM orders WHERE id = 1", POLICY_ACTION_ALLOW, ""},
      {"DROP TABLE orders", POLICY_ACTION_DENY, "no-destructive-ddl"},
      {"DELETE FROM orders", POLICY_ACTION_DENY, "unbounded-writes"},
      {"DELETE FROM orders WHERE 1 = 1", POLICY_ACTION_DENY,
       "unbounded-writes"},
      {"DELETE FROM orders WHERE id = 7", POLICY_ACTION_ALLOW, ""},
      {"SELECT pg_read_file('/etc/passwd')", POLICY_ACTION_DENY,
       "superuser-functions"},
      {"SELECT lo_unlink(42)", POLICY_ACTION_DENY, "superuser-functions"},
      {"CREATE INDEX i ON orders (id)", POLICY_ACTION_REQUIRE_APPROVAL,
       "schema-changes-reviewed"},
      // Most restrictive across statements: the DROP denies the message.
      {"SELECT 1; DROP TABLE orders", POLICY_ACTION_DENY, "no-destructive-ddl"},
      // ... and across nested statements.
      {"WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
       POLICY_ACTION_DENY, "unbounded-writes"},
      {"DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$", POLICY_ACTION_DENY,
       "no-destructive-ddl"},
      {"DO $$ BEGIN EXECUTE 'DROP ' || 'TABLE orders'; END $$",
       POLICY_ACTION_DENY, "dynamic-sql"},
      {"EXPLAIN ANALYZE DELETE FROM orders", POLICY_ACTION_DENY,
       "unbounded-writes"},
  };
  for (const Case& c : cases) {
    const engine::Decision d = Eval(c.sql);
    EXPECT_EQ(d.action, c.action) << c.sql << " — " << d.reason;
    EXPECT_EQ(d.rule, c.rule) << c.sql << " — " << d.reason;
  }
}

TEST_F(PolicyTest, IdentityEnvironmentAndUnparseable) {
  const engine::Subject bot{"support-bot", {}, "agent"};
  EXPECT_EQ(Eval("INSERT INTO notes VALUES (1)", bot).rule, "agents-read-only");
  EXPECT_EQ(Eval("SELECT * FROM notes", bot).action, POLICY_ACTION_ALLOW);
  const engine::Decision bad = Eval("SELEC * FROM t");
  EXPECT_EQ(bad.action, POLICY_ACTION_DENY);
  EXPECT_THAT(bad.reason, HasSubstr("unparseable"));
  // No policy for staging: fail closed.
  const engine::Decision none =
      Eval("SELECT 1", {"alice", {}, "human"}, "staging");
  EXPECT_EQ(none.action, POLICY_ACTION_DENY);
  EXPECT_THAT(none.reason, HasSubstr("no policy applies"));
  EXPECT_THAT(Eval("DROP TABLE orders").message,
              HasSubstr("Destructive DDL is blocked"));
}

TEST(PolicyCompileTest, DiagnosticsNamePositionAndHint) {
  std::vector<lang::Diagnostic> diags;
  auto bundle = lang::Compile({{"bad.yaml", R"(apiVersion: warden/v1
kind: Policy
metadata: { name: p }
spec:
  rules:
    - name: r1
      match:
        comands: [DROP TABLE]
      action: deny
    - name: r1
      match: { classes: [writes] }
      action: approve
    - name: r3
      action: require_approval
)"}},
                              &diags);
  ASSERT_FALSE(bundle.ok());
  std::vector<std::string> lines;
  for (const auto& d : diags) lines.push_back(d.ToString());
  EXPECT_THAT(lines, ::testing::Contains(
                         "bad.yaml:8:9: unknown key 'comands' in match (hint: "
                         "did you mean 'commands'?)"));
  EXPECT_THAT(lines,
              ::testing::Contains(HasSubstr("duplicate rule name 'r1'")));
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("unknown class 'writes'")));
  EXPECT_THAT(lines, ::testing::Contains(
                         HasSubstr("did you mean 'require_approval'?")));
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("names no reviewers")));
  EXPECT_THAT(std::string(bundle.status().message()),
              HasSubstr("bad.yaml:8:9"));
}

TEST(PolicyCompileTest, YamlSyntaxAndWrongKinds) {
  std::vector<lang::Diagnostic> diags;
  EXPECT_FALSE(
      lang::Compile({{"x.yaml", "apiVersion: [unclosed"}}, &diags).ok());
  ASSERT_FALSE(diags.empty());
  EXPECT_EQ(diags[0].file, "x.yaml");
  EXPECT_GT(diags[0].line, 0);
  EXPECT_FALSE(lang::Compile({{"y.yaml",
                               "apiVersion: warden/v2\nkind: Policy\n"
                               "metadata: {name: p}\nspec: {}\n"}},
                             &diags)
                   .ok());
  EXPECT_THAT(diags[0].message, HasSubstr("apiVersion must be warden/v1"));
}

}  // namespace
}  // namespace warden::policy
