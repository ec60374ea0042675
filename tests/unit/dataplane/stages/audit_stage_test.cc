// The audit stage, with fake callbacks, a fake trail and real timers:
// what it records, what it refuses, how a sync-mode hold ends.
#include "dataplane/stages/audit_stage.h"

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "dataplane/stages/result_tracker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/dataplane/pgwire/bodies.h"
#include "tests/unit/dataplane/stages/fake_callbacks.h"

namespace warden::dataplane::stages {
namespace {

using ::testing::HasSubstr;
using pgwire::testing::BindBody;
using pgwire::testing::ExecuteBody;
using pgwire::testing::ParseBody;
using pgwire::testing::QueryBody;

class FakeTrail : public AuditTrail {
 public:
  warden::v1::AuditEvent NewEvent(
      warden::v1::AuditEventKind kind) const override {
    warden::v1::AuditEvent e;
    e.set_kind(kind);
    e.set_session_id("s-1");
    return e;
  }
  absl::StatusOr<uint64_t> Record(warden::v1::AuditEvent* event) override {
    if (full) return absl::ResourceExhaustedError("spool full");
    // A copy: the stage may move fields out of what was recorded.
    events.push_back(*event);
    return ++sequence;
  }
  std::vector<warden::v1::AuditEvent> events;
  uint64_t sequence = 100;
  bool full = false;
};

class FakeAcks : public audit::AuditAcks {
 public:
  uint64_t acknowledged() const override { return acked; }
  void WhenAcknowledged(uint64_t sequence,
                        std::function<void()> done) override {
    waiting.emplace_back(sequence, std::move(done));
  }
  void Nudge() override { ++nudges; }
  uint64_t acked = 0;
  int nudges = 0;
  std::vector<std::pair<uint64_t, std::function<void()>>> waiting;
};


struct AuditStageTest : ::testing::Test {
  void SetUp() override { ASSERT_TRUE(cb.loop_init.ok()); }
  std::unique_ptr<AuditStage> Make(AuditStageOptions options = {}) {
    options.results_lost = &lost;
    return std::make_unique<AuditStage>(&cb, &trail, options);
  }
  StageResult Send(AuditStage& stage, char type, const std::string& body,
                   bool resumed = false) {
    if (!resumed) cb.execution() = Execution{};
    bodies.push_back(body);
    const StageResult r = stage.OnFrontend({type, bodies.back()}, resumed);
    if (r != StageResult::kHold) Relay(type);
    return r;
  }
  // What the session's correlator does once the message is relayed: it
  // follows its execution (the intent the stage left) to the answers.
  void Relay(char type) {
    tracker.OnFrontend(type, bodies.back(), std::move(cb.execution().intent),
                       cb.now, &cb.completed);
  }
  void Backend(AuditStage& stage, char type, std::string body) {
    bodies.push_back(std::move(body));
    tracker.OnBackend(type, bodies.back(), cb.now, &cb.completed);
    stage.OnBackend({type, bodies.back()});
  }
  void End(AuditStage& stage, absl::string_view why) {
    tracker.Finish(why, cb.now, &cb.completed);
    stage.OnEnd(why);
  }
  // Runs the loop for `ms` (timers, posted work).
  void RunFor(int ms) {
    cb.loop().AddTimer(std::chrono::milliseconds(ms),
                       [this] { cb.loop().Stop(); });
    cb.loop().Run();
  }

  FakeCallbacks cb;
  ResultTracker tracker;
  FakeTrail trail;
  std::atomic<uint64_t> lost{0};
  std::deque<std::string> bodies;
};

TEST_F(AuditStageTest, RecordsTheIntentWithTheVerdictBeforeItRuns) {
  auto stage = Make();
  gate::Verdict v;
  v.allowed = false;
  v.decision.action = warden::v1::POLICY_ACTION_DENY;
  v.decision.policy = "guard";
  v.decision.rule = "no-drop";
  v.decision.audit = warden::v1::AUDIT_LEVEL_FULL;
  v.sqlstate = "42501";
  cb.execution() = Execution{};
  cb.execution().verdict = v;
  cb.execution().refusal = Refusal{"refused", false};
  bodies.push_back(QueryBody("drop table orders"));
  EXPECT_EQ(stage->OnFrontend({'Q', bodies.back()}, false),
            StageResult::kReplaced);
  ASSERT_EQ(trail.events.size(), 1u);
  const auto& st = trail.events[0].statement();
  EXPECT_EQ(st.text(), "drop table orders");
  EXPECT_EQ(st.rule(), "no-drop");
  EXPECT_EQ(st.decision(), warden::v1::POLICY_ACTION_DENY);
  EXPECT_EQ(st.sqlstate(), "42501");
  EXPECT_EQ(st.database(), "shop");
  EXPECT_EQ(st.phase(), warden::v1::STATEMENT_PHASE_INTENT);
  EXPECT_EQ(stage->statements(), 1u);
}

TEST_F(AuditStageTest, WhatCannotBeRecordedDoesNotRun) {
  auto stage = Make();
  trail.full = true;
  EXPECT_EQ(Send(*stage, 'Q', QueryBody("select 1")), StageResult::kReplaced);
  ASSERT_TRUE(cb.execution().refusal.has_value());
  EXPECT_THAT(cb.execution().refusal->error,
              HasSubstr("the audit trail cannot record this statement"));
  EXPECT_THAT(cb.execution().refusal->error, HasSubstr("53000"));
}

TEST_F(AuditStageTest, EachBindRecordsWhatItsParseRecorded) {
  auto stage = Make();
  ASSERT_EQ(Send(*stage, 'P', ParseBody("s1", "select * from orders")),
            StageResult::kContinue);
  ASSERT_EQ(Send(*stage, 'B', BindBody("", "s1")), StageResult::kContinue);
  ASSERT_EQ(Send(*stage, 'B', BindBody("", "s1")), StageResult::kContinue);
  ASSERT_EQ(trail.events.size(), 3u);
  EXPECT_EQ(trail.events[0].statement().protocol(), "extended-prepare");
  for (int i : {1, 2}) {
    EXPECT_EQ(trail.events[i].statement().text(), "select * from orders");
    EXPECT_EQ(trail.events[i].statement().protocol(), "extended-execute");
  }
  // A refused Bind runs nothing and records nothing (its Parse did).
  cb.execution() = Execution{};
  cb.execution().refusal = Refusal{"refused", false};
  bodies.push_back(BindBody("", "s1"));
  stage->OnFrontend({'B', bodies.back()}, false);
  EXPECT_EQ(trail.events.size(), 3u);
  // A Parse that could not be recorded leaves no template behind.
  trail.full = true;
  ASSERT_EQ(Send(*stage, 'P', ParseBody("s1", "select 2")),
            StageResult::kReplaced);
  trail.full = false;
  ASSERT_EQ(Send(*stage, 'B', BindBody("", "s1")), StageResult::kContinue);
  EXPECT_THAT(trail.events.back().statement().reason(),
              HasSubstr("whose text Warden did not keep"));
}

TEST_F(AuditStageTest, SyncModeHoldsUntilTheAcknowledgement) {
  FakeAcks acks;
  AuditStageOptions options;
  options.sync = &acks;
  options.sync_timeout_ms = 5000;
  auto stage = Make(options);
  const std::string q = QueryBody("select 1");
  EXPECT_EQ(Send(*stage, 'Q', q), StageResult::kHold);
  EXPECT_TRUE(stage->holding());
  ASSERT_EQ(acks.waiting.size(), 1u);
  EXPECT_EQ(acks.waiting[0].first, trail.sequence);
  EXPECT_EQ(acks.nudges, 1);
  EXPECT_EQ(cb.resumes, 0);
  // The acknowledgement arrives on another thread; the resume on the loop.
  std::thread sender([&] { acks.waiting[0].second(); });
  sender.join();
  RunFor(50);
  EXPECT_EQ(cb.resumes, 1);
  EXPECT_FALSE(stage->holding());
  // The chain runs it again from the audit stage: it goes, recorded once.
  EXPECT_EQ(Send(*stage, 'Q', q, /*resumed=*/true), StageResult::kContinue);
  EXPECT_EQ(trail.events.size(), 1u);
  // Already acknowledged: no hold.
  acks.acked = trail.sequence + 1;
  EXPECT_EQ(Send(*stage, 'Q', q), StageResult::kContinue);
}

TEST_F(AuditStageTest, SyncModeRefusesWhatTheControlPlaneNeverConfirmed) {
  FakeAcks acks;
  AuditStageOptions options;
  options.sync = &acks;
  options.sync_timeout_ms = 20;
  auto stage = Make(options);
  const std::string p = ParseBody("s1", "select 1");
  ASSERT_EQ(Send(*stage, 'P', p), StageResult::kHold);
  RunFor(200);
  EXPECT_EQ(cb.resumes, 1);
  EXPECT_EQ(Send(*stage, 'P', p, /*resumed=*/true), StageResult::kReplaced);
  ASSERT_TRUE(cb.execution().refusal.has_value());
  EXPECT_THAT(cb.execution().refusal->error,
              HasSubstr("did not confirm this statement's audit record within "
                        "20 ms"));
  // The trail says its intent did not run (red team pass 11, F6).
  const uint64_t parse_intent = 101;  // FakeTrail's first sequence
  ASSERT_EQ(trail.events.size(), 2u);
  EXPECT_EQ(trail.events[1].statement().phase(),
            warden::v1::STATEMENT_PHASE_RESULT);
  EXPECT_EQ(trail.events[1].statement().intent_sequence(), parse_intent);
  EXPECT_EQ(trail.events[1].statement().sqlstate(), "53000");
  EXPECT_THAT(trail.events[1].statement().reason(), HasSubstr("not run"));
  // A late acknowledgement changes nothing.
  acks.waiting[0].second();
  RunFor(20);
  EXPECT_EQ(cb.resumes, 1);
  // The refused Parse left no template: its Binds record no text.
  acks.acked = ~0ull;
  ASSERT_EQ(Send(*stage, 'B', BindBody("", "s1")), StageResult::kContinue);
  EXPECT_THAT(trail.events.back().statement().reason(),
              HasSubstr("whose text Warden did not keep"));
}

TEST_F(AuditStageTest, ACancelWithdrawsTheHeldStatement) {
  FakeAcks acks;
  AuditStageOptions options;
  options.sync = &acks;
  options.sync_timeout_ms = 60000;
  auto stage = Make(options);
  const std::string q = QueryBody("delete from orders");
  ASSERT_EQ(Send(*stage, 'Q', q), StageResult::kHold);
  // Not held: a cancel has nothing to withdraw.
  AuditStage idle(&cb, &trail, options);
  idle.OnCancel();
  EXPECT_EQ(cb.resumes, 0);
  stage->OnCancel();
  EXPECT_EQ(cb.resumes, 1);
  EXPECT_FALSE(stage->holding());
  EXPECT_EQ(Send(*stage, 'Q', q, /*resumed=*/true), StageResult::kReplaced);
  ASSERT_TRUE(cb.execution().refusal.has_value());
  EXPECT_THAT(cb.execution().refusal->error, HasSubstr("57014"));
  EXPECT_THAT(cb.execution().refusal->error,
              HasSubstr("canceling statement due to user request"));
  ASSERT_EQ(trail.events.size(), 2u);
  EXPECT_EQ(trail.events[1].statement().intent_sequence(), trail.sequence - 1);
  EXPECT_EQ(trail.events[1].statement().sqlstate(), "57014");
  EXPECT_THAT(trail.events[1].statement().reason(),
              HasSubstr("not run: withdrawn by the client's cancel"));
  // The acknowledgement that comes later resumes nothing, and the next
  // statement is not refused.
  acks.waiting[0].second();
  RunFor(20);
  EXPECT_EQ(cb.resumes, 1);
  acks.acked = ~0ull;
  EXPECT_EQ(Send(*stage, 'Q', QueryBody("select 1")), StageResult::kContinue);
}

TEST_F(AuditStageTest, AnEndedSessionIsNotResumed) {
  FakeAcks acks;
  AuditStageOptions options;
  options.sync = &acks;
  options.sync_timeout_ms = 20;
  auto stage = Make(options);
  ASSERT_EQ(Send(*stage, 'Q', QueryBody("select 1")), StageResult::kHold);
  stage->OnEnd("client closed the connection");
  RunFor(100);
  EXPECT_EQ(cb.resumes, 0);
  ASSERT_EQ(trail.events.size(), 2u);
  EXPECT_EQ(trail.events[1].statement().intent_sequence(), trail.sequence - 1);
  EXPECT_THAT(trail.events[1].statement().reason(),
              HasSubstr("not run: the session ended (client closed the "
                        "connection)"));
  // Nor after the stage is gone.
  acks.waiting[0].second();
  stage.reset();
  RunFor(20);
  EXPECT_EQ(cb.resumes, 0);
}

// Red team pass 11 (F3): a SQL cursor read through a protocol Execute
// left no event for the read.
TEST_F(AuditStageTest, AnExecuteOfACursorIsAStatementOfItsOwn) {
  AuditStageOptions options;
  options.results = true;
  auto stage = Make(options);
  cb.execution() = Execution{};
  cb.execution().cursor_text = "declare exfil cursor with hold for select * from customers";
  bodies.push_back(ExecuteBody("exfil"));
  ASSERT_EQ(stage->OnFrontend({'E', bodies.back()}, false), StageResult::kContinue);
  Relay('E');
  ASSERT_EQ(trail.events.size(), 1u);
  const auto& st = trail.events[0].statement();
  EXPECT_EQ(st.text(), "declare exfil cursor with hold for select * from customers");
  EXPECT_EQ(st.protocol(), "extended-execute");
  EXPECT_THAT(st.reason(), HasSubstr("execution of cursor \"exfil\""));
  const uint64_t intent = trail.sequence;
  Backend(*stage, 'D', "");
  std::string tag = "FETCH 1";
  tag.push_back('\0');
  Backend(*stage, 'C', tag);
  ASSERT_EQ(trail.events.size(), 2u);
  EXPECT_EQ(trail.events[1].statement().intent_sequence(), intent);
  EXPECT_EQ(trail.events[1].statement().rows(), 1);
}

TEST_F(AuditStageTest, ResultsFollowTheAnswers) {
  AuditStageOptions options;
  options.results = true;
  auto stage = Make(options);
  ASSERT_EQ(Send(*stage, 'Q', QueryBody("select * from orders")),
            StageResult::kContinue);
  const uint64_t intent = trail.sequence;
  Backend(*stage, 'D', "");
  Backend(*stage, 'D', "");
  std::string tag = "SELECT 2";
  tag.push_back('\0');
  Backend(*stage, 'C', tag);
  Backend(*stage, 'Z', "I");
  ASSERT_EQ(trail.events.size(), 2u);
  const auto& result = trail.events[1].statement();
  EXPECT_EQ(result.phase(), warden::v1::STATEMENT_PHASE_RESULT);
  EXPECT_EQ(result.intent_sequence(), intent);
  EXPECT_EQ(result.rows(), 2);
  EXPECT_EQ(result.sqlstate(), "00000");
  // It repeats what its intent recorded (moved out of the intent once
  // that was on disk), not the text.
  const auto& recorded = trail.events[0].statement();
  EXPECT_EQ(recorded.database(), "shop");
  EXPECT_EQ(result.database(), "shop");
  EXPECT_EQ(result.protocol(), recorded.protocol());
  EXPECT_EQ(result.protocol(), "simple");
  EXPECT_EQ(result.decision(), recorded.decision());
  EXPECT_TRUE(result.text().empty());
  // A result that cannot be recorded is counted.
  ASSERT_EQ(Send(*stage, 'Q', QueryBody("select 1")), StageResult::kContinue);
  trail.full = true;
  Backend(*stage, 'Z', "I");
  EXPECT_EQ(lost.load(), 1u);
  trail.full = false;
  // What was still running when the session ended is recorded too.
  ASSERT_EQ(Send(*stage, 'Q', QueryBody("select pg_sleep(10)")),
            StageResult::kContinue);
  const uint64_t running = trail.sequence;
  End(*stage, "client went away");
  EXPECT_EQ(trail.events.back().statement().intent_sequence(), running);
  EXPECT_EQ(trail.events.back().statement().phase(),
            warden::v1::STATEMENT_PHASE_RESULT);
}

}  // namespace
}  // namespace warden::dataplane::stages
