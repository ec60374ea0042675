// The policy stage, with fake callbacks and a real gate: what it refuses,
// what it remembers across messages, and what PostgreSQL's answers undo.
#include "dataplane/stages/policy_stage.h"

#include <deque>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/lang/compile.h"
#include "tests/unit/dataplane/pgwire/bodies.h"
#include "tests/unit/dataplane/stages/fake_callbacks.h"

namespace warden::dataplane::stages {
namespace {

using ::testing::HasSubstr;
using pgwire::testing::BindBody;
using pgwire::testing::CloseBody;
using pgwire::testing::DescribeBody;
using pgwire::testing::ExecuteBody;
using pgwire::testing::ParseBody;
using pgwire::testing::QueryBody;

constexpr char kNoDrop[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match: { commands: [DROP TABLE] }
      action: deny
      message: Dropping tables is not allowed.
)";

// A tightened policy: reading is denied too.
constexpr char kNoSelect[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match: { commands: [DROP TABLE] }
      action: deny
      message: Dropping tables is not allowed.
    - name: no-select
      match: { commands: [SELECT] }
      action: deny
      message: Reading is paused.
)";

// Tightened by object: the orders table is off limits, however it is read.
constexpr char kNoOrders[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: [prod]
  rules:
    - name: no-orders
      match: { objects: ["orders"] }
      action: deny
      message: Orders are off limits.
)";

std::unique_ptr<gate::Gate> MakeGate(const char* text) {
  auto bundle = policy::lang::Compile({{"guard.yaml", text}});
  EXPECT_TRUE(bundle.ok()) << bundle.status();
  return std::make_unique<gate::Gate>(
      bundle.ok() ? *bundle : warden::v1::PolicyBundle(), 100);
}


struct PolicyStageTest : ::testing::Test {
  PolicyStageTest() : stage(&cb, /*keep_verdicts=*/true) {
    gate = MakeGate(kNoDrop);
    cb.execution().gate = gate.get();
  }
  // Runs one client message as the chain would: a fresh execution.
  StageResult Send(char type, const std::string& body, bool shielded = false) {
    const gate::Gate* g = cb.execution().gate;
    cb.execution() = Execution{};
    cb.execution().gate = g;
    bodies.push_back(body);  // the stage may keep views into it
    return stage.OnFrontend({type, bodies.back(), shielded}, false);
  }
  std::string Error() const {
    return cb.execution_.refusal.has_value() ? cb.execution_.refusal->error
                                             : "";
  }
  void Sync() {
    ++cb.pipeline_.syncs_sent;
    ++cb.pipeline_.pending_syncs;
  }
  // PostgreSQL's ReadyForQuery for the oldest batch.
  void Ready(char status = 'T') {
    // As the correlator counts it before the stages see it.
    ++cb.pipeline_.syncs_done;
    --cb.pipeline_.pending_syncs;
    bodies.push_back(std::string(1, status));
    stage.OnBackend({'Z', bodies.back()});
  }
  void Backend(char type, std::string body = "") {
    bodies.push_back(std::move(body));
    stage.OnBackend({type, bodies.back()});
  }

  FakeCallbacks cb;
  std::unique_ptr<gate::Gate> gate;
  PolicyStage stage;
  std::deque<std::string> bodies;
};

TEST_F(PolicyStageTest, ADeniedQueryIsRefusedWithTheGatesWordsAndVerdict) {
  EXPECT_EQ(Send('Q', QueryBody("select 1")), StageResult::kContinue);
  ASSERT_TRUE(cb.execution().verdict.has_value());
  EXPECT_TRUE(cb.execution().verdict->allowed);

  EXPECT_EQ(Send('Q', QueryBody("drop table orders")), StageResult::kReplaced);
  EXPECT_THAT(Error(), HasSubstr("Dropping tables is not allowed."));
  EXPECT_THAT(Error(), HasSubstr("42501"));
  ASSERT_TRUE(cb.execution().verdict.has_value());
  EXPECT_FALSE(cb.execution().verdict->allowed);
  EXPECT_FALSE(cb.execution().refusal->parse);
}

TEST_F(PolicyStageTest, WithoutAuditNoVerdictIsCopied) {
  PolicyStage quiet(&cb, /*keep_verdicts=*/false);
  const std::string body = QueryBody("drop table orders");
  EXPECT_EQ(quiet.OnFrontend({'Q', body}, false), StageResult::kReplaced);
  EXPECT_FALSE(cb.execution().verdict.has_value());
}

TEST_F(PolicyStageTest, WithoutAGateNothingIsJudged) {
  cb.execution().gate = nullptr;
  EXPECT_EQ(Send('Q', QueryBody("drop table orders")), StageResult::kContinue);
  EXPECT_FALSE(cb.execution().refusal.has_value());
}

TEST_F(PolicyStageTest, ARefusedParseRefusesItsBindAndDescribeToo) {
  EXPECT_EQ(Send('P', ParseBody("s1", "drop table orders")),
            StageResult::kReplaced);
  const std::string error = Error();
  EXPECT_TRUE(cb.execution().refusal->parse);  // a new name: PostgreSQL drops it
  Sync();
  // The poison came back as its error: PostgreSQL read it.
  stage.OnBackend({'E', "", /*refusal_taken=*/true, /*refused_parse=*/true});
  Ready();
  EXPECT_EQ(Send('B', BindBody("", "s1")), StageResult::kReplaced);
  EXPECT_EQ(Error(), error);
  EXPECT_EQ(Send('D', DescribeBody('S', "s1")), StageResult::kReplaced);
  EXPECT_EQ(Error(), error);
  // Another name is not affected.
  EXPECT_EQ(Send('B', BindBody("", "s2")), StageResult::kContinue);
}

TEST_F(PolicyStageTest, SqlExecuteOfARefusedPrepareIsRefused) {
  auto tighter = MakeGate(kNoSelect);
  cb.execution().gate = tighter.get();
  EXPECT_EQ(Send('Q', QueryBody("prepare p as select * from orders")),
            StageResult::kReplaced);
  EXPECT_THAT(Error(), HasSubstr("Reading is paused."));
  const std::string error = Error();
  Sync();
  Ready('I');
  EXPECT_EQ(Send('Q', QueryBody("execute p")), StageResult::kReplaced);
  EXPECT_EQ(Error(), error);
}

TEST_F(PolicyStageTest, ATightenedPolicyReachesPreparedStatementsAndPortals) {
  EXPECT_EQ(Send('P', ParseBody("s1", "select * from orders")),
            StageResult::kContinue);
  EXPECT_EQ(Send('B', BindBody("p1", "s1")), StageResult::kContinue);
  Sync();
  Backend('1');  // ParseComplete
  Backend('2');  // BindComplete
  Ready();       // in a transaction: the portal stays
  // The policy changes: what was prepared or bound is judged again.
  auto tighter = MakeGate(kNoSelect);
  cb.execution().gate = tighter.get();
  EXPECT_EQ(Send('E', ExecuteBody("p1")), StageResult::kReplaced);
  EXPECT_THAT(Error(), HasSubstr("Reading is paused."));
  EXPECT_EQ(cb.execution().refused_portal_text, "select * from orders");
  EXPECT_EQ(Send('B', BindBody("p2", "s1")), StageResult::kReplaced);
  EXPECT_THAT(Error(), HasSubstr("Reading is paused."));
  EXPECT_EQ(Send('D', DescribeBody('S', "s1")), StageResult::kReplaced);
}

TEST_F(PolicyStageTest, AnIdleReadyForQueryEndsThePortalsUnlessMoreWasSent) {
  ASSERT_EQ(Send('P', ParseBody("s1", "select * from orders")),
            StageResult::kContinue);
  ASSERT_EQ(Send('B', BindBody("p1", "s1")), StageResult::kContinue);
  Sync();
  // The client already bound p2 in the next batch before the first one's
  // ReadyForQuery came.
  ASSERT_EQ(Send('B', BindBody("p2", "s1")), StageResult::kContinue);
  Sync();
  Backend('1');
  Backend('2');
  Ready('I');  // idle, but a batch is still in flight: portals stay
  EXPECT_EQ(stage.portal_count(), 2u);
  Backend('2');
  Ready('I');  // idle and nothing in flight: the transaction's portals end
  EXPECT_EQ(stage.portal_count(), 0u);
}

// Red team pass 11 (F2): PostgreSQL knows a portal by its first 63 bytes,
// so a name that differs after them is the same portal.
TEST_F(PolicyStageTest, APortalReachedByALongerNameIsJudgedAgainToo) {
  const std::string bound = std::string(63, 'p') + "E";
  const std::string alias = std::string(63, 'p') + "B";
  ASSERT_EQ(Send('P', ParseBody("s1", "select * from orders")),
            StageResult::kContinue);
  ASSERT_EQ(Send('B', BindBody(bound, "s1")), StageResult::kContinue);
  Sync();
  Backend('1');
  Backend('2');
  Ready();
  auto tighter = MakeGate(kNoSelect);
  cb.execution().gate = tighter.get();
  EXPECT_EQ(Send('E', ExecuteBody(alias)), StageResult::kReplaced);
  EXPECT_THAT(Error(), HasSubstr("Reading is paused."));
}

// Red team pass 11 (F1): a cursor declared, or a portal bound, under the
// old policy was read with SQL FETCH (or a protocol Execute of the
// cursor) under the new one without being judged again.
TEST_F(PolicyStageTest, CursorsAndFetchAreJudgedAgainUnderANewPolicy) {
  ASSERT_EQ(Send('Q', QueryBody("declare hc cursor with hold for select * from "
                            "orders")),
            StageResult::kContinue);
  ASSERT_EQ(Send('P', ParseBody("s1", "select * from orders")),
            StageResult::kContinue);
  ASSERT_EQ(Send('B', BindBody("p1", "s1")), StageResult::kContinue);
  Sync();
  Backend('1');
  Backend('2');
  Ready();
  // Same policy: nothing changes; an Execute of the cursor names its
  // DECLARE for the audit trail.
  EXPECT_EQ(Send('Q', QueryBody("fetch all from hc")), StageResult::kContinue);
  EXPECT_EQ(Send('E', ExecuteBody("hc")), StageResult::kContinue);
  EXPECT_EQ(cb.execution().cursor_text,
            "declare hc cursor with hold for select * from orders");
  EXPECT_EQ(Send('E', ExecuteBody("p1")), StageResult::kContinue);
  EXPECT_EQ(cb.execution().cursor_text, "");
  auto tighter = MakeGate(kNoOrders);
  cb.execution().gate = tighter.get();
  EXPECT_EQ(Send('Q', QueryBody("fetch all from hc")), StageResult::kReplaced);
  EXPECT_THAT(Error(), HasSubstr("Orders are off limits."));
  EXPECT_EQ(Send('Q', QueryBody("move 1 in hc")), StageResult::kReplaced);
  EXPECT_EQ(Send('Q', QueryBody("fetch all from p1")), StageResult::kReplaced);
  EXPECT_EQ(Send('E', ExecuteBody("hc")), StageResult::kReplaced);
  EXPECT_EQ(cb.execution().refused_portal_text,
            "declare hc cursor with hold for select * from orders");
  // A cursor declared again under the new policy is judged as declared.
  EXPECT_EQ(Send('Q', QueryBody("declare hc cursor for select 1")),
            StageResult::kContinue);
  EXPECT_EQ(Send('Q', QueryBody("fetch all from hc")), StageResult::kContinue);
}

TEST_F(PolicyStageTest, AParsePostgreSQLSkippedIsUndoneAtReadyForQuery) {
  // s1 is refused and PostgreSQL confirms it never had it.
  ASSERT_EQ(Send('P', ParseBody("s1", "drop table orders")),
            StageResult::kReplaced);
  const std::string refusal = Error();
  Sync();
  stage.OnBackend({'E', "", true, true});
  Ready();
  // An allowed Parse of the same name, skipped by PostgreSQL (an earlier
  // error in its batch): no ParseComplete.
  ASSERT_EQ(Send('P', ParseBody("s1", "select 1")), StageResult::kContinue);
  EXPECT_EQ(Send('B', BindBody("", "s1")), StageResult::kContinue);
  Sync();
  Backend('E', "");  // the batch's first message failed
  Ready();
  // Warden forgets only what PostgreSQL forgot: s1 is still the refused one.
  EXPECT_EQ(Send('B', BindBody("", "s1")), StageResult::kReplaced);
  EXPECT_EQ(Error(), refusal);
  EXPECT_EQ(stage.tentative_count(), 0u);
}

// Protocol-sequence fuzzer, seed 1318: a Close PostgreSQL skipped (an
// error earlier in its part) left the statement in place, but a refused
// Parse of the same name sent right after it was taken as naming nothing,
// and its refusal then stood for the name: a later Bind that PostgreSQL
// runs (the old, judged statement) was refused.
TEST_F(PolicyStageTest, ARefusedParseAfterAnUnconfirmedCloseKeepsTheOldOne) {
  ASSERT_EQ(Send('P', ParseBody("s2", "commit")), StageResult::kContinue);
  Sync();
  Backend('1');
  Ready();
  // One send: a part that fails before its Close, then a refused Parse.
  ASSERT_EQ(Send('B', BindBody("", "nope")), StageResult::kContinue);
  ASSERT_EQ(Send('C', CloseBody('S', "s2")), StageResult::kContinue);
  Sync();
  ASSERT_EQ(Send('P', ParseBody("s2", "drop table orders")),
            StageResult::kReplaced);
  EXPECT_FALSE(cb.execution().refusal->parse);
  Sync();
  // PostgreSQL: the Bind fails, the Close is skipped; the poison fails.
  Backend('E', "");
  Ready();
  stage.OnBackend({'E', "", /*refusal_taken=*/true, /*refused_parse=*/false});
  Ready();
  // s2 is still the COMMIT PostgreSQL has: its Bind goes through.
  EXPECT_EQ(Send('B', BindBody("", "s2")), StageResult::kContinue);
  EXPECT_EQ(stage.prepared_count(), 1u);
}

TEST_F(PolicyStageTest, AConfirmedCloseForgetsTheStatement) {
  ASSERT_EQ(Send('P', ParseBody("s1", "select 1")), StageResult::kContinue);
  Sync();
  Backend('1');
  Ready();
  EXPECT_EQ(stage.prepared_count(), 1u);
  ASSERT_EQ(Send('C', CloseBody('S', "s1")), StageResult::kContinue);
  Sync();
  Backend('3');  // CloseComplete
  Ready();
  EXPECT_EQ(stage.prepared_count(), 0u);
  EXPECT_EQ(stage.tentative_count(), 0u);
}

TEST_F(PolicyStageTest, AShieldedCloseKeepsTheConfirmationsInStep) {
  ASSERT_EQ(Send('P', ParseBody("s1", "select 1")), StageResult::kContinue);
  Sync();
  Backend('1');
  Ready();
  // The session answered a Close of an unsafe portal with its own Close;
  // then the client closes s1 in the same batch.
  EXPECT_EQ(Send('C', CloseBody('P', "bad"), /*shielded=*/true),
            StageResult::kContinue);
  EXPECT_FALSE(cb.execution().refusal.has_value());
  ASSERT_EQ(Send('C', CloseBody('S', "s1")), StageResult::kContinue);
  Sync();
  // PostgreSQL skipped the client's Close (only the shield's CloseComplete
  // came): s1 must come back.
  Backend('3');
  Backend('E', "");
  Ready();
  EXPECT_EQ(stage.prepared_count(), 1u);
}

TEST_F(PolicyStageTest, PipelinedBackslashesWaitForTheEarlierStatements) {
  // Nothing in flight: a backslash is fine.
  EXPECT_EQ(Send('Q', QueryBody("select 'a\\b'")), StageResult::kContinue);
  Sync();  // ... and it has not been answered yet
  EXPECT_EQ(Send('Q', QueryBody("select 'a\\b'")), StageResult::kReplaced);
  EXPECT_THAT(Error(), HasSubstr("backslash or a non-ASCII byte"));
  // Plain ASCII pipelines freely.
  EXPECT_EQ(Send('Q', QueryBody("select 2")), StageResult::kContinue);
}

TEST_F(PolicyStageTest, AParseALaterStageRefusedStandsForThatRefusal) {
  const std::string body = ParseBody("s9", "select 1");
  ASSERT_EQ(Send('P', body), StageResult::kContinue);
  stage.OnRefusedLater({'P', body}, Refusal{"not-recorded", false});
  EXPECT_EQ(Send('B', BindBody("", "s9")), StageResult::kReplaced);
  EXPECT_EQ(Error(), "not-recorded");
}

TEST_F(PolicyStageTest, TooManyPreparedBytesEndTheSession) {
  const std::string big(1 << 20, 'x');
  for (int i = 0; i < 70 && cb.failed_sqlstate.empty(); ++i) {
    Send('Q', QueryBody("prepare p" + std::to_string(i) + " as select '" + big +
                    "'"));
  }
  EXPECT_EQ(cb.failed_sqlstate, "54000");
  EXPECT_THAT(cb.failed_message, HasSubstr("prepared statements"));
}

}  // namespace
}  // namespace warden::dataplane::stages
