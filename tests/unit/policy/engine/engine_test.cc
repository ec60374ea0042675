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

// Composition (issue 13 item 11): a policy without `environments` (a
// baseline) adds its rules everywhere but opens no environment, and
// never takes a decision of an environment's own policy over, whatever
// the file names' order.
TEST(PolicyCompositionTest, ABaselinePolicyCannotSwitchFailClosedOff) {
  constexpr char kBaseline[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: a-baseline }
spec:
  defaults: { action: allow }
  rules:
    - { name: no-truncate, match: { commands: ["TRUNCATE TABLE"] }, action: deny }
    - { name: reads-ok, match: { classes: [read] }, action: allow }
)";
  constexpr char kProd[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: prod-guard }
spec:
  environments: [prod]
  defaults: { action: allow }
  rules:
    - { name: no-drop, match: { commands: ["DROP TABLE"] }, action: deny }
    - { name: selects-ok, match: { commands: [SELECT] }, action: allow }
)";
  for (bool baseline_first : {true, false}) {
    std::vector<lang::SourceFile> files = {{"a-baseline.yaml", kBaseline},
                                           {"prod.yaml", kProd}};
    if (!baseline_first) std::swap(files[0], files[1]);
    auto bundle = lang::Compile(files);
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    auto eval = [&](const std::string& sql, const std::string& env) {
      return engine::Evaluate(*bundle, sql::Analyze(sql),
                              {"alice", {}, "human"}, env, "shop");
    };
    // Staging: only the baseline applies; it opens nothing.
    const engine::Decision staging = eval("SELECT 1", "staging");
    EXPECT_EQ(staging.action, POLICY_ACTION_DENY);
    EXPECT_THAT(staging.reason, HasSubstr("no policy names environment staging"));
    // ... but its denials still name themselves.
    EXPECT_EQ(eval("TRUNCATE orders", "staging").rule, "no-truncate");
    EXPECT_EQ(eval("TRUNCATE orders", "prod").rule, "no-truncate");
    // Prod: its own policy names the decisions, rule over default.
    const engine::Decision select = eval("SELECT 1", "prod");
    EXPECT_EQ(select.action, POLICY_ACTION_ALLOW);
    EXPECT_EQ(select.policy, "prod-guard");
    EXPECT_EQ(select.rule, "selects-ok");
    const engine::Decision update = eval("UPDATE t SET a = 1 WHERE id = 1", "prod");
    EXPECT_EQ(update.policy, "prod-guard");
    EXPECT_EQ(update.rule, "");
    EXPECT_EQ(eval("DROP TABLE orders", "prod").rule, "no-drop");
  }
  // Opening every environment is explicit.
  auto everywhere = lang::Compile({{"all.yaml", R"(apiVersion: warden/v1
kind: Policy
metadata: { name: open }
spec:
  environments: ["*"]
  defaults: { action: allow }
)"}});
  ASSERT_TRUE(everywhere.ok());
  EXPECT_EQ(engine::Evaluate(*everywhere, sql::Analyze("SELECT 1"),
                             {"alice", {}, "human"}, "staging", "shop")
                .action,
            POLICY_ACTION_ALLOW);
}

TEST(PolicyCompileTest, FunctionClassesAreChecked) {
  std::vector<lang::Diagnostic> diags;
  auto bad = lang::Compile({{"c.yaml", R"(apiVersion: warden/v1
kind: Policy
metadata: { name: c }
spec:
  environments: [prod]
  rules:
    - { name: r, match: { function_classes: [superuser, supreuser] }, action: deny }
)"}},
                           &diags);
  ASSERT_FALSE(bad.ok());
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_THAT(diags[0].message, HasSubstr("unknown function class 'supreuser'"));
  EXPECT_THAT(diags[0].hint, HasSubstr("large_object_write"));
  auto good = lang::Compile({{"c.yaml", R"(apiVersion: warden/v1
kind: Policy
metadata: { name: c }
spec:
  environments: [prod]
  rules:
    - { name: r, match: { function_classes: [Superuser] }, action: deny }
)"}});
  ASSERT_TRUE(good.ok()) << good.status();
  auto eval = [&](const std::string& sql) {
    return engine::Evaluate(*good, sql::Analyze(sql), {"alice", {}, "human"},
                            "prod", "shop");
  };
  EXPECT_EQ(eval("SELECT pg_read_file('/etc/passwd')").rule, "r");
  EXPECT_EQ(eval("SELECT * FROM pg_catalog.pg_authid").rule, "r");
  EXPECT_EQ(eval("SELECT 1").action, POLICY_ACTION_ALLOW);  // the default
  EXPECT_EQ(eval("SELECT lo_get(1)").rule, "");
}

TEST(PolicyCompileTest, IdentityProvidersCompileIntoTheBundle) {
  auto bundle = lang::Compile({{"idp.yaml", R"(apiVersion: warden/v1
kind: IdentityProvider
metadata: { name: google }
spec:
  issuer: https://accounts.google.com
  audiences: [123.apps.googleusercontent.com]
  environments: [prod, "stag*"]
  algorithms: [RS256]
  user_claim: email
  required_claims: { hd: example.com }
  clock_skew: 30s
  max_token_lifetime: 2h
  kind: human
)"}});
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  ASSERT_EQ(bundle->identity_providers_size(), 1);
  const auto& idp = bundle->identity_providers(0);
  EXPECT_EQ(idp.name(), "google");
  EXPECT_EQ(idp.issuer(), "https://accounts.google.com");
  EXPECT_EQ(idp.environments_size(), 2);
  EXPECT_EQ(idp.required_claims(0).claim(), "hd");
  EXPECT_EQ(idp.required_claims(0).value(), "example.com");
  EXPECT_EQ(idp.clock_skew_seconds(), 30);
  EXPECT_EQ(idp.max_token_lifetime_seconds(), 7200);
  EXPECT_EQ(idp.source(), "idp.yaml:1");
  EXPECT_TRUE(idp.jwks().empty()) << "keys are warden-control's to fetch";
  // The provider is part of the content digest.
  auto other = lang::Compile({{"idp.yaml", R"(apiVersion: warden/v1
kind: IdentityProvider
metadata: { name: google }
spec:
  issuer: https://accounts.google.com
  audiences: [456.apps.googleusercontent.com]
)"}});
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->digest(), bundle->digest());
}

TEST(PolicyCompileTest, BadIdentityProvidersAreNamed) {
  std::vector<lang::Diagnostic> diags;
  auto bundle = lang::Compile({{"idp.yaml", R"(apiVersion: warden/v1
kind: IdentityProvider
metadata: { name: a }
spec:
  issuer: http://idp.example.com
  algorithms: [HS256]
---
apiVersion: warden/v1
kind: IdentityProvider
metadata: { name: b }
spec:
  issuer: https://same.example.com
  audiences: [x]
---
apiVersion: warden/v1
kind: IdentityProvider
metadata: { name: c }
spec:
  issuer: https://same.example.com
  audiences: [x]
  jwks_uri: ftp://keys
)"}},
                              &diags);
  ASSERT_FALSE(bundle.ok());
  std::string all;
  for (const auto& d : diags) all += d.ToString() + "\n";
  EXPECT_THAT(all, HasSubstr("idp.yaml:5:11: issuer must be the provider's "
                             "https:// issuer URL"));
  EXPECT_THAT(all, HasSubstr("audiences must list at least one audience"));
  EXPECT_THAT(all, HasSubstr("algorithm 'HS256' is not supported"));
  EXPECT_THAT(all, HasSubstr("jwks_uri must be an https:// URL"));
  EXPECT_THAT(all, HasSubstr("identity provider 'c' has the issuer of 'b'"));
}

TEST(PolicyCompileTest, IdentityMappingsPickTheFirstMatchingRole) {
  auto bundle = lang::Compile({{"roles.yaml", R"(apiVersion: warden/v1
kind: IdentityMapping
metadata: { name: shop-roles }
spec:
  environments: [prod]
  databases: [shop]
  rules:
    - match: { groups: [dba] }
      database_role: app_admin
    - match: { kind: agent, users: ["support-*"] }
      database_role: app_support
---
apiVersion: warden/v1
kind: IdentityMapping
metadata: { name: everywhere-else }
spec:
  rules:
    - match: { groups: [engineers] }
      database_role: app_rw
  default_role: app_ro
)"}});
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  ASSERT_EQ(bundle->identity_mappings_size(), 2);
  engine::Subject dba{"alice", {"engineers", "dba"}, "human"};
  engine::Subject bot{"support-bot", {}, "agent"};
  engine::Subject other_bot{"etl-bot", {}, "agent"};
  auto d = engine::MapRole(*bundle, dba, "prod", "shop");
  EXPECT_TRUE(d.mapped);
  EXPECT_EQ(d.role, "app_admin") << "first rule wins";
  EXPECT_EQ(d.mapping, "shop-roles");
  EXPECT_EQ(d.source, "roles.yaml:8");
  EXPECT_EQ(engine::MapRole(*bundle, bot, "prod", "shop").role, "app_support");
  // User globs ignore case, as logins and the directory do (issue 14).
  engine::Subject shouting_bot{"SUPPORT-Bot", {}, "agent"};
  EXPECT_EQ(engine::MapRole(*bundle, shouting_bot, "prod", "shop").role,
            "app_support");
  // The first mapping that applies decides: no rule and no default there.
  d = engine::MapRole(*bundle, other_bot, "prod", "shop");
  EXPECT_TRUE(d.mapped);
  EXPECT_TRUE(d.role.empty());
  EXPECT_THAT(d.reason, HasSubstr("no rule of identity mapping shop-roles"));
  // Elsewhere the second mapping applies, with its default.
  EXPECT_EQ(engine::MapRole(*bundle, dba, "staging", "shop").role, "app_rw");
  EXPECT_EQ(engine::MapRole(*bundle, other_bot, "prod", "billing").role,
            "app_ro");
  // Without mappings nothing is mapped: the service role is used.
  EXPECT_FALSE(engine::MapRole(warden::v1::PolicyBundle(), dba, "prod", "shop")
                   .mapped);

  std::vector<lang::Diagnostic> diags;
  auto bad = lang::Compile({{"bad.yaml", R"(apiVersion: warden/v1
kind: IdentityMapping
metadata: { name: r }
spec:
  rules:
    - match: { kind: robot }
    - database_role: x
)"}},
                           &diags);
  ASSERT_FALSE(bad.ok());
  std::string all;
  for (const auto& diag : diags) all += diag.ToString() + "\n";
  EXPECT_THAT(all, HasSubstr("a rule needs a database_role"));
  EXPECT_THAT(all, HasSubstr("kind must be one of human, agent, service"));
  EXPECT_THAT(all, HasSubstr("a rule needs a match"));
}

// Red team: globs folded A-Z only, so a rule for "ÅSA@*" missed the
// login "åsa@example.com" that the directory matched.
TEST(PolicyCompileTest, UserGlobsIgnoreCaseBeyondAscii) {
  auto bundle = lang::Compile({{"roles.yaml", R"(apiVersion: warden/v1
kind: IdentityMapping
metadata: { name: nordic }
spec:
  rules:
    - match: { users: ["\u00C5SA@*"] }
      database_role: app_asa
  default_role: app_ro
)"}});
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  for (const char* user : {"\xC3\xA5sa@example.com", "a\xCC\x8Asa@example.com",
                           "\xC3\x85SA@EXAMPLE.COM"}) {
    engine::Subject who{user, {}, "human"};
    EXPECT_EQ(engine::MapRole(*bundle, who, "prod", "shop").role, "app_asa")
        << user;
  }
  engine::Subject ascii{"asa@example.com", {}, "human"};
  EXPECT_EQ(engine::MapRole(*bundle, ascii, "prod", "shop").role, "app_ro");
}

TEST(PolicyCompileTest, IdentityAttributesFromTheDirectoryAreMatched) {
  auto bundle = lang::Compile({{"p.yaml", R"(apiVersion: warden/v1
kind: Policy
metadata: { name: finance }
spec:
  environments: [prod]
  rules:
    - name: finance-reads-only
      match: { identity: { attributes: { department: "Fin*" } }, classes: [write] }
      action: deny
---
apiVersion: warden/v1
kind: IdentityMapping
metadata: { name: roles }
spec:
  rules:
    - match: { attributes: { title: DBA, department: Platform } }
      database_role: app_admin
  default_role: app_ro
)"}});
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  engine::Subject finance{"fay", {}, "human", {{"department", "Finance"}}};
  engine::Subject other{"otto", {}, "human", {{"department", "Sales"}}};
  engine::Subject none{"nina", {}, "human"};
  const auto write = sql::Analyze("UPDATE t SET a = 1");
  EXPECT_EQ(engine::Evaluate(*bundle, write, finance, "prod", "shop").action,
            warden::v1::POLICY_ACTION_DENY);
  EXPECT_NE(engine::Evaluate(*bundle, write, other, "prod", "shop").action,
            warden::v1::POLICY_ACTION_DENY);
  EXPECT_NE(engine::Evaluate(*bundle, write, none, "prod", "shop").action,
            warden::v1::POLICY_ACTION_DENY);
  // Every attribute of a match must hold.
  engine::Subject dba{"dora", {}, "human",
                      {{"title", "DBA"}, {"department", "Platform"}}};
  engine::Subject half{"hal", {}, "human", {{"title", "DBA"}}};
  EXPECT_EQ(engine::MapRole(*bundle, dba, "prod", "shop").role, "app_admin");
  EXPECT_EQ(engine::MapRole(*bundle, half, "prod", "shop").role, "app_ro");
  // Attributes need value globs.
  auto bad = lang::Compile({{"bad.yaml", R"(apiVersion: warden/v1
kind: Policy
metadata: { name: bad }
spec:
  rules:
    - name: r
      match: { identity: { attributes: [department] } }
      action: deny
)"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("attributes must map attribute names to value globs"));
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

constexpr char kKeys[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: keys }
spec:
  environments: [prod]
  defaults: { action: allow, audit: normalized }
  rules:
    - name: pii-columns
      match: { columns: ["*ssn", "card_*"] }
      action: allow
      audit: metadata
    - name: replication-role
      match: { settings: [Session_Replication_Role] }
      action: deny
    - name: server-copy
      match: { copy: [file, program] }
      action: deny
    - name: untrusted-languages
      match: { languages: ["plpython*u", "C"] }
      action: deny
    - name: drop-column
      match: { commands: [ALTER TABLE], subcommands: ["drop column"] }
      action: require_approval
      approval: { reviewers: ["group:db-owners"] }
      audit: full
)";

class PolicyKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bundle = lang::Compile({{"keys.yaml", kKeys}});
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    bundle_ = *bundle;
  }
  engine::Decision Eval(const std::string& sql) {
    return engine::Evaluate(bundle_, sql::Analyze(sql), {"alice", {}, "human"},
                            "prod", "shop");
  }
  warden::v1::PolicyBundle bundle_;
};

TEST_F(PolicyKeysTest, CompilesKeysNormalized) {
  const auto& p = bundle_.policies(0);
  EXPECT_EQ(p.default_audit(), warden::v1::AUDIT_LEVEL_NORMALIZED);
  EXPECT_EQ(p.rules(0).audit(), warden::v1::AUDIT_LEVEL_METADATA);
  EXPECT_EQ(p.rules(1).audit(), warden::v1::AUDIT_LEVEL_UNSPECIFIED);
  EXPECT_THAT(p.rules(1).match().settings(),
              ::testing::ElementsAre("session_replication_role"));
  EXPECT_THAT(p.rules(2).match().copy_modes(),
              ::testing::ElementsAre("file", "program"));
  EXPECT_THAT(p.rules(3).match().languages(),
              ::testing::ElementsAre("plpython*u", "c"));
  EXPECT_THAT(p.rules(4).match().subcommands(),
              ::testing::ElementsAre("DROP COLUMN"));
  // Omitted defaults.audit is FULL.
  auto plain = lang::Compile({{"p.yaml",
                               "apiVersion: warden/v1\nkind: Policy\n"
                               "metadata: {name: p}\nspec: {}\n"}});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->policies(0).default_audit(), warden::v1::AUDIT_LEVEL_FULL);
}

TEST_F(PolicyKeysTest, NewMatchKeys) {
  struct Case {
    const char* sql;
    warden::v1::PolicyAction action;
    const char* rule;
  };
  const Case cases[] = {
      {"SELECT ssn FROM customers WHERE id = 1", POLICY_ACTION_ALLOW,
       "pii-columns"},
      {"SELECT c.card_number FROM customers c", POLICY_ACTION_ALLOW,
       "pii-columns"},
      {"SELECT name FROM customers", POLICY_ACTION_ALLOW, ""},
      {"SET session_replication_role = replica", POLICY_ACTION_DENY,
       "replication-role"},
      {"SELECT set_config('session_replication_role', 'replica', true)",
       POLICY_ACTION_DENY, "replication-role"},
      // A computed name may be any parameter.
      {"SELECT set_config(current_user, 'x', true)", POLICY_ACTION_DENY,
       "replication-role"},
      {"SET work_mem = '64MB'", POLICY_ACTION_ALLOW, ""},
      {"COPY t TO '/tmp/t'", POLICY_ACTION_DENY, "server-copy"},
      {"COPY t FROM PROGRAM 'id'", POLICY_ACTION_DENY, "server-copy"},
      {"COPY t FROM STDIN", POLICY_ACTION_ALLOW, ""},
      {"DO LANGUAGE plpython3u $$ pass $$", POLICY_ACTION_DENY,
       "untrusted-languages"},
      {"CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'lib', 'f'",
       POLICY_ACTION_DENY, "untrusted-languages"},
      {"DO $$ BEGIN END $$", POLICY_ACTION_ALLOW, ""},
      {"ALTER TABLE t DROP COLUMN a", POLICY_ACTION_REQUIRE_APPROVAL,
       "drop-column"},
      {"ALTER TABLE t ADD COLUMN a int", POLICY_ACTION_ALLOW, ""},
  };
  for (const Case& c : cases) {
    const engine::Decision d = Eval(c.sql);
    EXPECT_EQ(d.action, c.action) << c.sql << " — " << d.reason;
    EXPECT_EQ(d.rule, c.rule) << c.sql << " — " << d.reason;
  }
}

TEST_F(PolicyKeysTest, AuditIsTheMostDetailedLevelThatApplied) {
  using warden::v1::AUDIT_LEVEL_FULL;
  using warden::v1::AUDIT_LEVEL_METADATA;
  using warden::v1::AUDIT_LEVEL_NORMALIZED;
  // Only the metadata rule matched.
  EXPECT_EQ(Eval("SELECT ssn FROM customers").audit, AUDIT_LEVEL_METADATA);
  // The policy default (normalized) decided.
  EXPECT_EQ(Eval("SELECT name FROM customers").audit, AUDIT_LEVEL_NORMALIZED);
  // A deny without its own level: the policy default.
  EXPECT_EQ(Eval("COPY t TO '/tmp/t'").audit, AUDIT_LEVEL_NORMALIZED);
  // Across statements the most detailed wins.
  EXPECT_EQ(Eval("SELECT ssn FROM c; SELECT name FROM c").audit,
            AUDIT_LEVEL_NORMALIZED);
  EXPECT_EQ(Eval("SELECT ssn FROM c; ALTER TABLE c DROP COLUMN x").audit,
            AUDIT_LEVEL_FULL);
  // Unparseable SQL: the policy default; no policy at all: full.
  EXPECT_EQ(Eval("SELEC 1").audit, AUDIT_LEVEL_NORMALIZED);
  EXPECT_EQ(
      engine::Evaluate(warden::v1::PolicyBundle(), sql::Analyze("SELECT 1"),
                       {"alice", {}, "human"}, "prod", "shop")
          .audit,
      AUDIT_LEVEL_FULL);
  // A hand-built bundle without levels is audited in full.
  warden::v1::PolicyBundle bare;
  auto* rule = bare.add_policies()->add_rules();
  rule->set_name("deny-all");
  rule->set_action(POLICY_ACTION_DENY);
  const engine::Decision d = engine::Evaluate(
      bare, sql::Analyze("SELECT 1"), {"alice", {}, "human"}, "prod", "shop");
  EXPECT_EQ(d.action, POLICY_ACTION_DENY);
  EXPECT_EQ(d.audit, AUDIT_LEVEL_FULL);
}

TEST_F(PolicyTest, DecisionNamesTheStatementThatDecided) {
  const engine::Decision d = Eval("SELECT 1; DROP TABLE orders; SELECT 2");
  EXPECT_EQ(d.action, POLICY_ACTION_DENY);
  EXPECT_EQ(d.statement, 1);
  EXPECT_EQ(d.command, "DROP TABLE");
  EXPECT_EQ(d.via, "");
  EXPECT_EQ(d.reason,
            "DROP TABLE denied by rule no-destructive-ddl of policy "
            "production-guardrails (statement 2)");
  const engine::Decision nested =
      Eval("DO $$ BEGIN EXECUTE 'DROP TABLE orders'; END $$");
  EXPECT_EQ(nested.statement, 0);
  EXPECT_EQ(nested.command, "DROP TABLE");
  EXPECT_EQ(nested.via, "DO via execute");
  EXPECT_EQ(nested.reason,
            "DROP TABLE denied by rule no-destructive-ddl of policy "
            "production-guardrails (inside DO via execute)");
  const engine::Decision allowed = Eval("SELECT 1");
  EXPECT_EQ(allowed.reason,
            "SELECT allowed by default of policy production-guardrails");
  EXPECT_EQ(allowed.statement, 0);
  const engine::Decision approval = Eval("CREATE INDEX i ON t (a)");
  EXPECT_EQ(approval.reason,
            "CREATE INDEX requires approval by rule schema-changes-reviewed of "
            "policy production-guardrails");
  EXPECT_EQ(Eval("SELEC 1").statement, -1);
}

TEST(PolicyCompileTest, DiagnosticsForNewKeys) {
  std::vector<lang::Diagnostic> diags;
  auto bundle = lang::Compile({{"bad.yaml", R"(apiVersion: warden/v1
kind: Policy
metadata: { name: p }
spec:
  defaults: { audit: everything }
  rules:
    - name: r1
      match:
        copy: [stdio, programm]
        setings: [x]
      action: deny
      audit: metdata
    - name: r2
      match: { copy: { a: b }, dynamic_sql: yes, languages: [[c]] }
      action: deny
)"}},
                              &diags);
  ASSERT_FALSE(bundle.ok());
  std::vector<std::string> lines;
  for (const auto& d : diags) lines.push_back(d.ToString());
  EXPECT_THAT(lines,
              ::testing::Contains(
                  "bad.yaml:5:22: defaults.audit must be one of metadata, "
                  "normalized, full, not 'everything'"));
  EXPECT_THAT(lines, ::testing::Contains(
                         "bad.yaml:9:23: copy must be one of stdio, file, "
                         "program, not 'programm' (hint: did you mean "
                         "'program'?)"));
  EXPECT_THAT(lines, ::testing::Contains(
                         "bad.yaml:10:9: unknown key 'setings' in match (hint: "
                         "did you mean 'settings'?)"));
  EXPECT_THAT(lines, ::testing::Contains(
                         "bad.yaml:12:14: audit must be one of metadata, "
                         "normalized, full, not 'metdata' (hint: did you mean "
                         "'metadata'?)"));
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr(
                         "bad.yaml:14:22: copy must be a list of stdio")));
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr(
                         "bad.yaml:14:45: dynamic_sql must be true or false")));
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr(
                         "bad.yaml:14:62: languages entries must be non-empty "
                         "strings")));
}

TEST(PolicyCompileTest, InputsThatHangYamlCppAreErrors) {
  // yaml-cpp 0.7 alone loops forever on these (found by policy_lang_fuzz).
  for (const char* text : {",", "# c\n,\n", "[a], b", "{a: b},"}) {
    std::vector<lang::Diagnostic> diags;
    EXPECT_FALSE(lang::Compile({{"h.yaml", text}}, &diags).ok()) << text;
    ASSERT_FALSE(diags.empty()) << text;
    EXPECT_EQ(diags[0].file, "h.yaml");
    EXPECT_GT(diags[0].line, 0) << text;
  }
}

// Found by policy_lang_fuzz: a NUL inside a function name came out of the
// YAML parser as bytes that are not UTF-8; the policy validated, and its
// bundle did not parse on the proxies. Control characters are refused.
TEST(PolicyCompileTest, ControlCharactersAreAnError) {
  const std::string policy =
      "apiVersion: warden/v1\nkind: Policy\nmetadata: {name: p}\n"
      "spec:\n  environments: [prod]\n  rules:\n    - name: r\n"
      "      match:\n        functions:\n          - pg\x01";
  std::vector<lang::Diagnostic> diags;
  EXPECT_FALSE(
      lang::Compile({{"c.yaml", policy + std::string("\0_reload_conf\n", 14) +
                                    "      action: deny\n"}},
                    &diags)
          .ok());
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].ToString(),
            "c.yaml:10:15: the file holds the control character U+0001, which "
            "YAML does not allow (hint: policies are printable text: tabs, "
            "newlines and characters)");
  for (const std::string& bad : {std::string("a: \x7f"), std::string("a: \xc2\x9b"),
                                std::string("a: b\0", 5)}) {
    EXPECT_FALSE(lang::Compile({{"b.yaml", bad}}).ok()) << bad;
  }
  // Tabs, CR LF and NEL are text.
  EXPECT_TRUE(lang::Compile({{"ok.yaml",
                              "apiVersion: warden/v1\r\nkind: Policy\r\n"
                              "metadata: {name: p}\r\nspec:\r\n"
                              "  environments: [prod]\t\r\n"}})
                  .ok());
}

TEST(PolicyCompileTest, InvalidUtf8IsAnError) {
  // Would otherwise land in proto3 strings and fail to parse on the proxy.
  std::vector<lang::Diagnostic> diags;
  EXPECT_FALSE(lang::Compile({{"u.yaml",
                               "apiVersion: warden/v1\nkind: Policy\n"
                               "metadata: {name: \"p\xff\"}\nspec: {}\n"}},
                             &diags)
                   .ok());
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].ToString(),
            "u.yaml:3:20: the file is not valid UTF-8 (hint: policies and "
            "policy tests are UTF-8 text)");
  for (const char* bad :
       {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    EXPECT_FALSE(lang::Compile({{"b.yaml", bad}}).ok());
  }
  // Well-formed multi-byte text is fine.
  EXPECT_TRUE(lang::Compile({{"ok.yaml",
                              "apiVersion: warden/v1\nkind: Policy\n"
                              "metadata: {name: \"pr\xc3\xbc"
                              "fung-\xe2\x82\xac-"
                              "\xf0\x9f\x94\x92\"}\nspec: {}\n"}})
                  .ok());
}

TEST(PolicyCompileTest, OddDocumentShapesAreDiagnosedNotThrown) {
  for (const char* text :
       {"[1, 2]", "just a scalar",
        "apiVersion: warden/v1\nkind: Policy\n"
        "metadata: [x]\nspec: {rules: [[1]]}\n",
        "apiVersion: warden/v1\nkind: Policy\nmetadata: {name: [a]}\n"
        "spec: {rules: [{name: r, action: deny, match: [1]}]}\n",
        "apiVersion: warden/v1\nkind: Policy\nmetadata: &m {name: a}\n"
        "spec: {defaults: *m, rules: [{name: {a: b}, action: {x: y}}]}\n"}) {
    std::vector<lang::Diagnostic> diags;
    EXPECT_FALSE(lang::Compile({{"o.yaml", text}}, &diags).ok()) << text;
    EXPECT_FALSE(diags.empty()) << text;
  }
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
