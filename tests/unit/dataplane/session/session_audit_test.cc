// A session's audit events: staged (never written one by one), the hold
// on the upstream from the first staged event until the batch's write,
// the shared fields carried by each event before the chain runs and
// encoded once after, failures reported, and the audit budget of a
// backlogged spool.
#include "dataplane/session/session_audit.h"

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "dataplane/audit/sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::dataplane::session {
namespace {

// SessionAudit::Record of a copy of `event`.
absl::StatusOr<uint64_t> RecordOf(SessionAudit& audit,
                                  warden::v1::AuditEvent event) {
  return audit.Record(&event);
}

// Keeps what was staged; Record and WriteStaged are not to be called.
class FakeSink : public audit::AuditSink {
 public:
  struct Staged {
    std::string shared;
    warden::v1::AuditEvent event;
  };
  absl::StatusOr<uint64_t> Record(warden::v1::AuditEvent, size_t*) override {
    ADD_FAILURE() << "Record instead of Stage";
    return absl::InternalError("no");
  }
  absl::StatusOr<uint64_t> Record(absl::string_view, warden::v1::AuditEvent,
                                  size_t*) override {
    ADD_FAILURE() << "Record instead of Stage";
    return absl::InternalError("no");
  }
  absl::StatusOr<uint64_t> Stage(absl::string_view shared,
                                 warden::v1::AuditEvent* event,
                                 size_t* size) override {
    if (!status.ok()) return status;
    staged.push_back({std::string(shared), *event});
    if (size != nullptr) *size = 100;
    return staged.size();
  }
  absl::Status WriteStaged() override {
    ADD_FAILURE() << "the session does not write";
    return absl::OkStatus();
  }
  double Fill() const override { return fill; }
  uint64_t CapacityBytes() const override { return capacity; }

  std::vector<Staged> staged;
  absl::Status status;
  double fill = 0;
  uint64_t capacity = 0;
};

class FakeCallbacks : public SessionAudit::Callbacks {
 public:
  void AwaitAuditWrite() override { ++awaits; }
  void ResumeAfter(absl::Duration delay) override { resumes.push_back(delay); }
  int awaits = 0;
  std::vector<absl::Duration> resumes;
};

struct SessionAuditTest : ::testing::Test {
  SessionAuditTest() { identity.set_user("alice"); }
  std::unique_ptr<SessionAudit> Make(audit::AuditSink* recorder,
                                     int64_t rate = 0) {
    SessionAudit::Context c;
    c.recorder = recorder;
    c.backlogged_session_rate = rate;
    c.sessions_throttled = &throttled;
    c.environment = "prod";
    c.session_id = "0123abcd";
    c.identity = &identity;
    c.peer_address = "127.0.0.1:5555";
    return std::make_unique<SessionAudit>(std::move(c), &callbacks);
  }
  warden::v1::AuditEvent Event() {
    return warden::v1::AuditEvent();  // (kind irrelevant here)
  }

  FakeSink sink;
  FakeCallbacks callbacks;
  warden::v1::Identity identity;
  std::atomic<uint64_t> throttled{0};
};

TEST_F(SessionAuditTest, BeforeTheChainEventsCarryTheSharedFields) {
  auto audit = Make(&sink);
  const auto event =
      audit->NewEvent(warden::v1::AUDIT_EVENT_KIND_SESSION_START);
  EXPECT_EQ(event.kind(), warden::v1::AUDIT_EVENT_KIND_SESSION_START);
  EXPECT_EQ(event.environment(), "prod");
  EXPECT_EQ(event.session_id(), "0123abcd");
  EXPECT_EQ(event.identity().user(), "alice");
  ASSERT_TRUE(audit->Audit(event));
  ASSERT_EQ(sink.staged.size(), 1u);
  EXPECT_EQ(sink.staged[0].shared, "");  // a whole event.
}

TEST_F(SessionAuditTest, OnceTheChainRunsTheSharedFieldsAreEncodedOnce) {
  auto audit = Make(&sink);
  audit->ChainBuilt(nullptr);
  const auto event = audit->NewEvent(warden::v1::AUDIT_EVENT_KIND_SESSION_END);
  EXPECT_EQ(event.environment(), "");
  EXPECT_FALSE(event.has_identity());
  ASSERT_TRUE(RecordOf(*audit, event).ok());
  warden::v1::AuditEvent shared;
  shared.set_environment("prod");
  shared.set_session_id("0123abcd");
  *shared.mutable_identity() = identity;
  ASSERT_EQ(sink.staged.size(), 1u);
  EXPECT_EQ(sink.staged[0].shared, *audit::EncodeShared(shared));
  EXPECT_FALSE(sink.staged[0].event.has_identity());
  // Encoded once: without the directory stage, the identity is taken as
  // it was (only that stage changes it once the chain runs).
  identity.set_user("mallory");
  ASSERT_TRUE(RecordOf(*audit, Event()).ok());
  EXPECT_EQ(sink.staged[1].shared, sink.staged[0].shared);
}

// The directory stage changed the identity: the next event's shared part
// is encoded again, with the new groups; until then it is reused.
TEST_F(SessionAuditTest, TheSharedFieldsAreEncodedAgainWhenTheIdentityChanges) {
  auto audit = Make(&sink);
  uint64_t changes = 0;
  audit->ChainBuilt([&changes] { return changes; });
  ASSERT_TRUE(RecordOf(*audit, Event()).ok());
  identity.add_groups("dba");
  ASSERT_TRUE(RecordOf(*audit, Event()).ok());
  ASSERT_EQ(sink.staged.size(), 2u);
  EXPECT_EQ(sink.staged[1].shared, sink.staged[0].shared);  // not yet told
  ++changes;
  ASSERT_TRUE(RecordOf(*audit, Event()).ok());
  ASSERT_EQ(sink.staged.size(), 3u);
  warden::v1::AuditEvent decoded;
  ASSERT_TRUE(decoded.ParseFromString(sink.staged[2].shared));
  ASSERT_EQ(decoded.identity().groups_size(), 1);
  EXPECT_EQ(decoded.identity().groups(0), "dba");
  EXPECT_EQ(decoded.identity().user(), "alice");
  EXPECT_NE(sink.staged[2].shared, sink.staged[0].shared);
  // And kept for the events after it.
  ASSERT_TRUE(RecordOf(*audit, Event()).ok());
  EXPECT_EQ(sink.staged[3].shared, sink.staged[2].shared);
}

TEST_F(SessionAuditTest, NothingGoesUpstreamUntilTheBatchIsWritten) {
  auto audit = Make(&sink);
  EXPECT_FALSE(audit->write_pending());
  ASSERT_TRUE(audit->Audit(Event()));
  EXPECT_TRUE(audit->write_pending());
  ASSERT_TRUE(audit->Audit(Event()));
  EXPECT_EQ(callbacks.awaits, 1);  // one write per batch.
  audit->Written();
  EXPECT_FALSE(audit->write_pending());
  ASSERT_TRUE(audit->Audit(Event()));
  EXPECT_TRUE(audit->write_pending());
  EXPECT_EQ(callbacks.awaits, 2);
  EXPECT_EQ(sink.staged.size(), 3u);
}

TEST_F(SessionAuditTest, AnEventTheSpoolRefusesIsReported) {
  auto audit = Make(&sink);
  sink.status = absl::ResourceExhaustedError("spool full");
  EXPECT_FALSE(audit->Audit(Event()));
  EXPECT_FALSE(RecordOf(*audit, Event()).ok());
  EXPECT_FALSE(audit->write_pending());
  EXPECT_EQ(callbacks.awaits, 0);
}

TEST_F(SessionAuditTest, WithoutARecorderNothingIsRecorded) {
  auto audit = Make(nullptr, /*rate=*/1);
  EXPECT_TRUE(audit->Audit(Event()));
  EXPECT_FALSE(audit->write_pending());
  EXPECT_FALSE(audit->Throttled());
}

TEST_F(SessionAuditTest, ABackloggedSpoolThrottlesAnIdentityOverItsRate) {
  auto audit = Make(&sink, /*rate=*/1);
  sink.fill = 0.9;  // (events recorded up to half full owe nothing)
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(audit->Audit(Event()));
  // Up to half full, no limit.
  sink.fill = 0.5;
  EXPECT_FALSE(audit->Throttled());
  EXPECT_FALSE(audit->throttled());
  sink.fill = 0.9;
  EXPECT_TRUE(audit->Throttled());
  EXPECT_TRUE(audit->throttled());
  EXPECT_EQ(throttled.load(), 1u);
  ASSERT_EQ(callbacks.resumes.size(), 1u);
  EXPECT_GE(callbacks.resumes[0], absl::Milliseconds(1));
  audit->Unthrottle();
  EXPECT_FALSE(audit->throttled());
}

// A statement is judged at the fill it would leave: with the spool at 45%
// nobody is slowed, but a 600 KB statement would leave it at 102% of 1 MB
// (the reserve: a budget of one event, 512 bytes, a second) and waits; a
// small one is read on.
TEST_F(SessionAuditTest, AStatementIsJudgedAtTheFillItWouldLeave) {
  auto audit = Make(&sink, /*rate=*/1000);
  sink.fill = 0.45;
  sink.capacity = 1'000'000;
  EXPECT_FALSE(audit->Throttled(100));
  EXPECT_TRUE(audit->Throttled(600'000));
  ASSERT_EQ(callbacks.resumes.size(), 1u);
  EXPECT_EQ(callbacks.resumes[0], kMaxThrottle + absl::Milliseconds(1));
  audit->Unthrottle();
  // Without a known capacity the fill is taken as it is.
  sink.capacity = 0;
  EXPECT_FALSE(audit->Throttled(600'000));
}

// What a login asks before it records: how long to wait, and nothing else
// (no pause of its own, no resume asked).
TEST_F(SessionAuditTest, WaitSaysHowLongWithoutThrottling) {
  auto audit = Make(&sink, /*rate=*/1000);
  sink.fill = 0.95;  // the reserve: one event a second
  EXPECT_FALSE(audit->Wait().has_value());  // nothing recorded yet
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(audit->Audit(Event()));
  const auto wait = audit->Wait();
  ASSERT_TRUE(wait.has_value());
  EXPECT_GT(*wait, absl::Seconds(2));
  EXPECT_LE(*wait, absl::Seconds(3));
  EXPECT_FALSE(audit->throttled());
  EXPECT_TRUE(callbacks.resumes.empty());
  EXPECT_EQ(throttled.load(), 0u);
  sink.fill = 0.4;
  EXPECT_FALSE(audit->Wait().has_value());
}

// A statement's record larger than what its message paid before it was
// read (a Bind repeats its prepared statement's text) is priced when it is
// built: refused while the identity's budget does not cover it, nothing
// staged. A Query that paid for its length goes through.
TEST_F(SessionAuditTest, AnUnpaidLargeStatementRecordIsRefused) {
  auto audit = Make(&sink, /*rate=*/1000);
  audit->ChainBuilt(nullptr);
  sink.fill = 0.95;
  sink.capacity = 1 << 20;
  warden::v1::AuditEvent bind;
  bind.set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  bind.mutable_statement()->set_phase(warden::v1::STATEMENT_PHASE_INTENT);
  bind.mutable_statement()->set_text(std::string(200'000, 'x'));
  bind.mutable_statement()->set_decision(warden::v1::POLICY_ACTION_ALLOW);
  auto recorded = RecordOf(*audit, bind);
  ASSERT_FALSE(recorded.ok());
  EXPECT_EQ(recorded.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(sink.staged.empty());
  // Refused by policy, it is recorded all the same, without its text.
  warden::v1::AuditEvent denied = bind;
  denied.mutable_statement()->set_decision(warden::v1::POLICY_ACTION_DENY);
  denied.mutable_statement()->add_tables("public.orders");
  denied.mutable_statement()->set_reason("no-unfiltered-writes");
  ASSERT_TRUE(RecordOf(*audit, denied).ok());
  ASSERT_EQ(sink.staged.size(), 1u);
  const auto& kept = sink.staged[0].event.statement();
  EXPECT_EQ(kept.decision(), warden::v1::POLICY_ACTION_DENY);
  EXPECT_EQ(kept.text(), "");
  EXPECT_EQ(kept.tables_size(), 0);
  EXPECT_THAT(kept.reason(), ::testing::StartsWith("no-unfiltered-writes; text"));
  sink.staged.clear();
  // Small ones are not priced here (their message paid, or they are small).
  bind.mutable_statement()->set_text("SELECT 1");
  EXPECT_TRUE(RecordOf(*audit, bind).ok());
  // A result event is never refused.
  warden::v1::AuditEvent result = bind;
  result.mutable_statement()->set_phase(warden::v1::STATEMENT_PHASE_RESULT);
  result.mutable_statement()->set_text(std::string(200'000, 'x'));
  EXPECT_TRUE(RecordOf(*audit, result).ok());
  // Below half full, a record large enough to take the spool into the
  // reserve is priced too.
  sink.fill = 0.45;
  bind.mutable_statement()->set_text(std::string(550'000, 'x'));
  recorded = RecordOf(*audit, bind);
  ASSERT_FALSE(recorded.ok());
  EXPECT_EQ(recorded.status().code(), absl::StatusCode::kUnavailable);
  sink.fill = 0.95;
  // A Query that paid for its length before it was read is recorded.
  auto query_session = Make(&sink, /*rate=*/1000);
  query_session->ChainBuilt(nullptr);
  sink.fill = 0.4;  // (paid: the spool was not backlogged when it was read)
  ASSERT_FALSE(query_session->Throttled(200'000));
  sink.fill = 0.95;
  bind.mutable_statement()->set_text(std::string(200'000, 'x'));
  EXPECT_TRUE(RecordOf(*query_session, bind).ok());
}

TEST_F(SessionAuditTest, TheIdentitysWindowIsSharedWithItsOtherSessions) {
  auto window = std::make_shared<AuditWindow>();
  auto first = Make(&sink, /*rate=*/1);
  first->set_window(window);
  sink.fill = 0.9;
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(first->Audit(Event()));
  // A second session of the same identity pays for the first's events.
  auto second = Make(&sink, /*rate=*/1);
  second->set_window(window);
  EXPECT_TRUE(second->Throttled());
  // One of another identity does not.
  auto other = Make(&sink, /*rate=*/1);
  EXPECT_FALSE(other->Throttled());
}

}  // namespace
}  // namespace warden::dataplane::session
