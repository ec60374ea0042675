// The proxy's policy gate: decisions and the words a client sees.
#include "dataplane/gate/gate.h"

#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/lang/compile.h"
#include "policy/lang/sources.h"

namespace warden::dataplane::gate {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kPolicy[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match: { commands: [DROP TABLE] }
      action: deny
      message: Dropping tables is not allowed.
    - name: review-ddl
      match: { commands: [CREATE INDEX] }
      action: require_approval
      message: Indexes need a review.
      approval: { reviewers: ["group:dba", "user:carol"], approvals: 2 }
    - name: no-fast-path
      match: { functions: ["oid:*"] }
      action: deny
)";

policy::engine::Subject Alice() { return {"alice", {"eng"}, "human"}; }

Gate MakeGate(const std::string& text = kPolicy) {
  auto bundle = policy::lang::Compile({{"guard.yaml", text}});
  EXPECT_TRUE(bundle.ok()) << bundle.status();
  return Gate(bundle.ok() ? *bundle : warden::v1::PolicyBundle(), 100);
}

TEST(GateTest, AllowedStatementHasNoRefusalText) {
  Gate gate = MakeGate();
  const Verdict v = gate.Judge("SELECT * FROM t", Alice(), "prod", "shop");
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.decision.action, warden::v1::POLICY_ACTION_ALLOW);
  EXPECT_THAT(v.sqlstate, IsEmpty());
}

TEST(GateTest, DenyNamesRulePolicyAndMessage) {
  Gate gate = MakeGate();
  const Verdict v =
      gate.Judge("select 1; drop table orders", Alice(), "prod", "shop");
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.sqlstate, "42501");
  EXPECT_EQ(v.message,
            "Warden: denied by rule \"no-drop\" of policy \"guard\": Dropping "
            "tables is not allowed.");
  EXPECT_THAT(v.detail, HasSubstr("DROP TABLE denied by rule no-drop of policy guard (statement 2)"));
}

TEST(GateTest, EveryVerdictNamesThePolicyRevision) {
  auto bundle = policy::lang::Compile({{"guard.yaml", kPolicy}});
  ASSERT_TRUE(bundle.ok());
  // Pushed through the control plane: its revision.
  Gate pushed(*bundle, 100, 42);
  const Verdict allowed = pushed.Judge("SELECT 1", Alice(), "prod", "shop");
  EXPECT_TRUE(allowed.allowed);
  EXPECT_EQ(allowed.revision, 42u);
  EXPECT_EQ(allowed.digest, bundle->digest());
  const Verdict denied =
      pushed.Judge("drop table orders", Alice(), "prod", "shop");
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.revision, 42u);
  EXPECT_THAT(denied.detail, HasSubstr("[policy revision 42]"));
  EXPECT_EQ(pushed.JudgeFunctionCall(1, Alice(), "prod", "shop").revision,
            42u);
  // From files: no revision, the digest instead.
  Gate files(*bundle, 100);
  const Verdict local = files.Judge("drop table orders", Alice(), "prod", "shop");
  EXPECT_EQ(local.revision, 0u);
  EXPECT_THAT(local.detail,
              HasSubstr("[policy " + bundle->digest().substr(0, 12) + "]"));
}

TEST(GateTest, RequireApprovalRefusesWithReviewersAndCount) {
  Gate gate = MakeGate();
  const Verdict v =
      gate.Judge("CREATE INDEX ON t (a)", Alice(), "prod", "shop");
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.decision.action, warden::v1::POLICY_ACTION_REQUIRE_APPROVAL);
  EXPECT_EQ(v.sqlstate, "42501");
  EXPECT_THAT(v.message, HasSubstr("approval required by rule \"review-ddl\""));
  EXPECT_THAT(v.message, HasSubstr("Indexes need a review."));
  EXPECT_THAT(v.hint, HasSubstr("2 approvals from group:dba, user:carol"));
}

TEST(GateTest, UnparseableSqlIsASyntaxErrorWithPostgresMessage) {
  Gate gate = MakeGate();
  const Verdict v = gate.Judge("SELECT * FORM t", Alice(), "prod", "shop");
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.sqlstate, "42601");
  EXPECT_EQ(v.message,
            "Warden could not parse the statement: syntax error at or near "
            "\"FORM\"");
  EXPECT_EQ(v.position, 10);
  EXPECT_THAT(v.hint, HasSubstr("policy \"guard\""));
}

TEST(GateTest, EnvironmentWithoutPolicyFailsClosed) {
  Gate gate = MakeGate();
  const Verdict v = gate.Judge("SELECT 1", Alice(), "staging", "shop");
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.sqlstate, "42501");
  EXPECT_THAT(v.message,
              HasSubstr("no policy applies to environment staging"));
}

TEST(GateTest, FunctionCallIsJudgedByOid) {
  Gate gate = MakeGate();
  const Verdict v = gate.JudgeFunctionCall(2026, Alice(), "prod", "shop");
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.decision.rule, "no-fast-path");
  EXPECT_THAT(v.detail, HasSubstr("FUNCTION CALL"));
}

TEST(GateTest, FunctionCallCountsAsUncheckableDynamicSql) {
  Gate gate = MakeGate(R"(apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: ["*"]
  rules:
    - name: no-dynamic
      match: { dynamic_sql: true }
      action: deny
)");
  EXPECT_EQ(gate.JudgeFunctionCall(1, Alice(), "prod", "shop").decision.rule,
            "no-dynamic");
  EXPECT_TRUE(gate.Judge("SELECT 1", Alice(), "prod", "shop").allowed);
}

TEST(GateTest, RepeatedTextIsAnalyzedOnce) {
  Gate gate = MakeGate();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(gate.Judge("SELECT 42", Alice(), "prod", "shop").allowed);
  }
  EXPECT_FALSE(gate.Judge("DROP TABLE t", Alice(), "prod", "shop").allowed);
  EXPECT_FALSE(gate.Judge("DROP TABLE t", Alice(), "prod", "shop").allowed);
  const auto stats = gate.cache_stats();
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.hits, 3u);
}

// A decision is reused only for the same analysis, identity and place:
// one shared analysis (the same shape with other constants) judged for
// people a rule tells apart, in places it tells apart, gets each its own.
TEST(GateTest, CachedDecisionsAreTheirOwnIdentitysAndPlaces) {
  constexpr char kScoped[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: scoped }
spec:
  environments: [prod]
  rules:
    - name: no-deletes-by-engineers
      match:
        commands: [DELETE]
        identity: { groups: [eng] }
      action: deny
    - name: no-agent-deletes
      match: { commands: [DELETE], identity: { kind: agent } }
      action: deny
)";
  Gate gate = MakeGate(kScoped);
  const policy::engine::Subject dba{"dana", {"dba"}, "human"};
  const policy::engine::Subject bot{"dana", {"dba"}, "agent"};
  for (int i = 0; i < 3; ++i) {
    const std::string sql = absl::StrCat("DELETE FROM t WHERE id = ", i);
    EXPECT_FALSE(gate.Judge(sql, Alice(), "prod", "shop").allowed) << sql;
    EXPECT_TRUE(gate.Judge(sql, dba, "prod", "shop").allowed) << sql;
    EXPECT_FALSE(gate.Judge(sql, bot, "prod", "shop").allowed) << sql;
    // No policy names dev: fail closed, whoever asks.
    EXPECT_FALSE(gate.Judge(sql, dba, "dev", "shop").allowed) << sql;
    EXPECT_FALSE(gate.Judge(sql, Alice(), "prod", "shop").allowed) << sql;
  }
  EXPECT_GE(gate.cache_stats().normalized_hits, 1u);
}

// ------------------------------------------------------------ Load / sources

std::string TempDir(const std::string& name) {
  std::string base = ::testing::TempDir();
  if (!base.empty() && base.back() == '/') base.pop_back();
  const std::string dir = absl::StrCat(base, "/gate_test_", name);
  ::mkdir(dir.c_str(), 0700);
  return dir;
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(GateLoadTest, FolderIsReadRecursivelyInSortedOrder) {
  const std::string dir = TempDir("sorted");
  ::mkdir((dir + "/sub").c_str(), 0700);
  Write(dir + "/b.yaml", "# b\n");
  Write(dir + "/a.yml", "# a\n");
  Write(dir + "/sub/c.yaml", "# c\n");
  Write(dir + "/notes.txt", "not a policy\n");
  Write(dir + "/.hidden.yaml", "ignored\n");
  auto sources = policy::lang::ReadSources({dir});
  ASSERT_TRUE(sources.ok()) << sources.status();
  ASSERT_EQ(sources->size(), 3u);
  EXPECT_EQ((*sources)[0].name, "a.yml");
  EXPECT_EQ((*sources)[1].name, "b.yaml");
  EXPECT_EQ((*sources)[2].name, "sub/c.yaml");
  EXPECT_EQ((*sources)[2].text, "# c\n");
}

TEST(GateLoadTest, MissingPathAndEmptyFolderAreErrors) {
  auto missing = policy::lang::ReadSources({"/nonexistent/warden/policy"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("'/nonexistent/warden/policy'"));
  const std::string empty = TempDir("empty");
  auto none = policy::lang::ReadSources({empty});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(none.status().message(), HasSubstr("no *.yaml or *.yml"));
}

TEST(GateLoadTest, LoadCompilesOrReportsDiagnostics) {
  const std::string dir = TempDir("load");
  Write(dir + "/guard.yaml", kPolicy);
  auto gate = Gate::Load({dir}, 10);
  ASSERT_TRUE(gate.ok()) << gate.status();
  EXPECT_EQ((*gate)->bundle().policies_size(), 1);
  EXPECT_EQ((*gate)->bundle().digest().size(), 64u);

  const std::string bad = TempDir("bad");
  std::string text = kPolicy;
  text.replace(text.find("action: deny"), 12, "action: dney");
  Write(bad + "/guard.yaml", text);
  auto broken = Gate::Load({bad}, 10);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(broken.status().message(),
              HasSubstr("guard.yaml:9:15: action must be allow, deny or "
                        "require_approval"));
}

}  // namespace
}  // namespace warden::dataplane::gate

namespace warden::dataplane::gate {
namespace {

TEST(GateDirectoryTest, FindsUsersByNameOrAliasIgnoringCase) {
  warden::v1::PolicyBundle bundle;
  auto* alice = bundle.add_directory();
  alice->set_user_name("alice@example.com");
  alice->add_aliases("a.smith@example.com");
  alice->set_active(true);
  alice->add_groups("dba");
  auto* bob = bundle.add_directory();
  bob->set_user_name("bob");
  // An alias never hides another user's userName.
  bob->add_aliases("alice@example.com");
  Gate gate(bundle, 10);
  const warden::v1::DirectoryEntry* found =
      gate.FindDirectoryEntry("A.Smith@Example.com").entry;
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->user_name(), "alice@example.com");
  found = gate.FindDirectoryEntry("ALICE@example.com").entry;
  ASSERT_NE(found, nullptr);
  EXPECT_TRUE(found->active());
  found = gate.FindDirectoryEntry("bob").entry;
  ASSERT_NE(found, nullptr);
  EXPECT_FALSE(found->active());
  EXPECT_EQ(gate.FindDirectoryEntry("carol").entry, nullptr);
  EXPECT_FALSE(gate.FindDirectoryEntry("carol").ambiguous);
}

// Red team: only A-Z were folded, so a deactivation of "ÅSA@EXAMPLE.COM"
// missed the token of "åsa@example.com".
TEST(GateDirectoryTest, NonAsciiNamesMatchIgnoringCaseAndComposition) {
  warden::v1::PolicyBundle bundle;
  auto* asa = bundle.add_directory();
  asa->set_user_name("\xC3\x85SA@EXAMPLE.COM");
  asa->add_aliases("\xC3\x85sa.Lind@Example.com");
  asa->set_active(false);
  Gate gate(bundle, 10);
  for (const char* name :
       {"\xC3\xA5sa@example.com", "a\xCC\x8Asa@example.com",
        "\xC3\xA5SA@example.com", "\xC3\xA5sa.lind@example.com"}) {
    const warden::v1::DirectoryEntry* found = gate.FindDirectoryEntry(name).entry;
    ASSERT_NE(found, nullptr) << name;
    EXPECT_FALSE(found->active());
  }
  EXPECT_EQ(gate.FindDirectoryEntry("asa@example.com").entry, nullptr);
}

// Red team pass 10: bundles had names in lower case only, so a name that
// reads like the provider's own spelling ("jane@Iab.example", capital I)
// passed at proxies.
TEST(GateDirectoryTest, LookAlikesOfTheNamesAsTheProviderWroteThem) {
  warden::v1::PolicyBundle bundle;
  auto* jane = bundle.add_directory();
  jane->set_user_name("jane@iab.example");
  jane->set_active(true);
  {
    Gate lower_only(bundle, 10);
    EXPECT_EQ(lower_only.DirectoryLookAlike("jane@lab.example"), "");
  }
  jane->add_written_names("jane@Iab.example");
  Gate gate(bundle, 10);
  EXPECT_EQ(gate.DirectoryLookAlike("jane@lab.example"), "jane@Iab.example");
  // Jane herself, in any case, is no look-alike.
  EXPECT_EQ(gate.DirectoryLookAlike("JANE@IAB.EXAMPLE"), "");
  EXPECT_EQ(gate.DirectoryLookAlike("jane@iab.example"), "");
}

// Issue 14: a deactivated user came back through another (active) user's
// e-mail alias, with that user's groups.
TEST(GateDirectoryTest, AnAliasCannotBeBorrowed) {
  warden::v1::PolicyBundle bundle;
  auto* dave = bundle.add_directory();
  dave->set_user_name("dave");
  dave->add_aliases("dave@example.com");
  dave->set_active(false);
  auto* mallory = bundle.add_directory();
  mallory->set_user_name("mallory");
  mallory->add_aliases("dave@example.com");
  mallory->add_aliases("shared@example.com");
  mallory->set_active(true);
  mallory->add_groups("dba");
  auto* eve = bundle.add_directory();
  eve->set_user_name("eve");
  eve->add_aliases("shared@example.com");
  eve->set_active(true);
  Gate gate(bundle, 10);
  const policy::engine::DirectoryMatch borrowed =
      gate.FindDirectoryEntry("DAVE@example.com");
  ASSERT_NE(borrowed.entry, nullptr);
  EXPECT_EQ(borrowed.entry->user_name(), "dave");
  EXPECT_FALSE(borrowed.entry->active());
  const policy::engine::DirectoryMatch shared =
      gate.FindDirectoryEntry("shared@example.com");
  EXPECT_TRUE(shared.ambiguous);
  EXPECT_EQ(shared.entry, nullptr);
  // A userName is never ambiguous.
  ASSERT_NE(gate.FindDirectoryEntry("mallory").entry, nullptr);
  EXPECT_EQ(gate.FindDirectoryEntry("mallory").entry->user_name(), "mallory");
  // The linear rules agree with the index, whatever the entries' order.
  bundle.mutable_directory()->SwapElements(0, 1);
  const policy::engine::DirectoryMatch linear =
      policy::engine::FindDirectoryEntry(bundle, "dave@EXAMPLE.com");
  ASSERT_NE(linear.entry, nullptr);
  EXPECT_EQ(linear.entry->user_name(), "dave");
  EXPECT_TRUE(
      policy::engine::FindDirectoryEntry(bundle, "Shared@example.com").ambiguous);
}

}  // namespace
}  // namespace warden::dataplane::gate
