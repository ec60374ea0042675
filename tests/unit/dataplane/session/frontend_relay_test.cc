// What the client's messages mean once the relay runs: framing and
// validation (fail closed), batches Warden cannot follow, the stages'
// word (relay, refuse, hold, end), shielded portals, Terminate, and the
// bound on refusals waiting for their errors.
#include "dataplane/session/frontend_relay.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/sqlstate.h"
#include "dataplane/session/correlator.h"
#include "dataplane/session/refusals.h"
#include "dataplane/stages/chain.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/dataplane/pgwire/bodies.h"
#include "tests/unit/dataplane/stages/fake_callbacks.h"

namespace warden::dataplane::session {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Action = FrontendRelay::Step::Action;

std::string Query(absl::string_view sql) {
  std::string m;
  pgwire::WriteQuery(&m, sql);
  return m;
}
std::string Bind(absl::string_view portal) {
  std::string m;
  pgwire::WriteBind(&m, portal, "");
  return m;
}
std::string Execute(absl::string_view portal) {
  std::string m;
  pgwire::WriteExecute(&m, portal);
  return m;
}

// A stage that does what the test says with each message, and records
// what it was shown.
class ScriptedStage : public stages::Stage {
 public:
  enum class Verdict { kRelay, kRefuse, kHold, kFail };
  ScriptedStage(stages::StageCallbacks* callbacks, Verdict* verdict,
                std::vector<std::string>* seen)
      : callbacks_(callbacks), verdict_(verdict), seen_(seen) {}
  stages::StageResult OnFrontend(const stages::Frontend& m, bool) override {
    seen_->push_back(std::string(1, m.type) + (m.shielded ? " shielded" : ""));
    switch (*verdict_) {
      case Verdict::kRelay:
        break;
      case Verdict::kRefuse:
        callbacks_->Refuse("the refusal", /*parse=*/false);
        return stages::StageResult::kReplaced;
      case Verdict::kHold:
        return stages::StageResult::kHold;
      case Verdict::kFail:
        callbacks_->Fail(pgwire::kInsufficientPrivilege, "deactivated",
                         warden::v1::SESSION_END_REASON_POLICY);
        return stages::StageResult::kReplaced;
    }
    return stages::StageResult::kContinue;
  }
  void OnBackend(const stages::Backend&) override {}

 private:
  stages::StageCallbacks* callbacks_;
  Verdict* verdict_;
  std::vector<std::string>* seen_;
};

struct FrontendRelayTest : ::testing::Test {
  FrontendRelayTest() {
    chain.Add(std::make_unique<ScriptedStage>(&callbacks, &verdict, &seen));
  }

  stages::FakeCallbacks callbacks;
  stages::Chain chain{&callbacks};
  Correlator correlator;
  Refusals refusals;
  ScriptedStage::Verdict verdict = ScriptedStage::Verdict::kRelay;
  std::vector<std::string> seen;
  FrontendRelay relay{&correlator, &refusals, &chain, &callbacks,
                      /*max_message_bytes=*/1024};
};

TEST_F(FrontendRelayTest, AnIncompleteMessageWaitsForMoreBytes) {
  const std::string q = Query("select 1");
  for (size_t n = 0; n < q.size(); ++n) {
    EXPECT_EQ(relay.OnMessage(q.substr(0, n), nullptr, true).action,
              Action::kNeedMore)
        << n;
  }
  EXPECT_THAT(seen, IsEmpty());
  EXPECT_FALSE(correlator.busy());
}

TEST_F(FrontendRelayTest, ARelayedMessageIsCountedAndSeenByTheStages) {
  const std::string buf = Query("select 1") + Query("select 2");
  const auto step = relay.OnMessage(buf, nullptr, true);
  EXPECT_EQ(step.action, Action::kRelay);
  EXPECT_EQ(step.size, Query("select 1").size());
  EXPECT_FALSE(step.replacement.has_value());
  EXPECT_FALSE(step.terminate);
  EXPECT_THAT(seen, ElementsAre("Q"));
  EXPECT_TRUE(correlator.busy());
}

TEST_F(FrontendRelayTest, BeforeTheRelayTheStagesDoNotSeeMessages) {
  EXPECT_EQ(relay.OnMessage(Query("select 1"), nullptr, false).action,
            Action::kRelay);
  EXPECT_THAT(seen, IsEmpty());
}

TEST_F(FrontendRelayTest, MalformedMessagesAreProtocolViolations) {
  // A length past the limit, and an unknown message type.
  std::string huge = "Q";
  huge += std::string("\x00\x01\x00\x00", 4);
  EXPECT_EQ(relay.OnMessage(huge, nullptr, true).action, Action::kViolation);
  std::string unknown = "?";
  unknown += std::string("\x00\x00\x00\x04", 4);
  const auto step = relay.OnMessage(unknown, nullptr, true);
  EXPECT_EQ(step.action, Action::kViolation);
  EXPECT_FALSE(step.message.empty());
  EXPECT_THAT(seen, IsEmpty());
}

TEST_F(FrontendRelayTest, AQueryInsideAnUnfinishedBatchIsRefused) {
  ASSERT_EQ(relay.OnMessage(Bind("p"), nullptr, true).action, Action::kRelay);
  const auto step = relay.OnMessage(Query("select 1"), nullptr, true);
  EXPECT_EQ(step.action, Action::kViolation);
  EXPECT_THAT(step.message, HasSubstr("unfinished extended-query batch"));
  EXPECT_THAT(seen, ElementsAre("B"));
}

TEST_F(FrontendRelayTest, ARefusedMessageGoesAsASubstitute) {
  verdict = ScriptedStage::Verdict::kRefuse;
  const std::string q = Query("drop table t");
  const auto step = relay.OnMessage(q, nullptr, true);
  EXPECT_EQ(step.action, Action::kRelay);
  EXPECT_EQ(step.size, q.size());
  ASSERT_TRUE(step.replacement.has_value());
  EXPECT_NE(*step.replacement, q);
  EXPECT_EQ(step.replacement->front(), 'Q');
  EXPECT_EQ(refusals.size(), 1u);
  // The substitute is relayed in the message's place.
  EXPECT_TRUE(correlator.busy());
}

TEST_F(FrontendRelayTest, AHeldMessageStaysUnread) {
  verdict = ScriptedStage::Verdict::kHold;
  const auto step = relay.OnMessage(Query("select 1"), nullptr, true);
  EXPECT_EQ(step.action, Action::kHold);
  EXPECT_FALSE(step.replacement.has_value());
  EXPECT_TRUE(chain.holding());
  EXPECT_FALSE(correlator.busy());
}

TEST_F(FrontendRelayTest, AStageThatEndsTheSessionEndsTheMessage) {
  verdict = ScriptedStage::Verdict::kFail;
  const auto step = relay.OnMessage(Query("select 1"), nullptr, true);
  EXPECT_EQ(step.action, Action::kEnded);
  EXPECT_EQ(callbacks.failed_message, "deactivated");
  EXPECT_FALSE(correlator.busy());
}

TEST_F(FrontendRelayTest, AnUnsafePortalIsShielded) {
  // Bound in a batch that failed: its portal may be half made.
  ASSERT_EQ(relay.OnMessage(Bind("p"), nullptr, true).action, Action::kRelay);
  std::string sync;
  pgwire::WriteSync(&sync);
  ASSERT_EQ(relay.OnMessage(sync, nullptr, true).action, Action::kRelay);
  correlator.Failed();
  correlator.Ready(false);
  seen.clear();
  // Even a stage's refusal does not replace the shield's poison.
  verdict = ScriptedStage::Verdict::kRefuse;
  const auto step = relay.OnMessage(Execute("p"), nullptr, true);
  EXPECT_EQ(step.action, Action::kRelay);
  ASSERT_TRUE(step.replacement.has_value());
  EXPECT_EQ(step.replacement->front(), 'E');
  EXPECT_THAT(*step.replacement, HasSubstr("warden"));
  EXPECT_EQ(refusals.size(), 1u);
  EXPECT_THAT(seen, ElementsAre("E shielded"));
}

TEST_F(FrontendRelayTest, TerminateIsRelayedThenEndsTheSession) {
  std::string terminate;
  pgwire::WriteTerminate(&terminate);
  const auto step = relay.OnMessage(terminate + Query("x"), nullptr, true);
  EXPECT_EQ(step.action, Action::kRelay);
  EXPECT_EQ(step.size, terminate.size());
  EXPECT_TRUE(step.terminate);
}

TEST_F(FrontendRelayTest, APasswordAfterStartupIsAViolation) {
  std::string password;
  pgwire::WritePasswordMessage(&password, "secret");
  const auto step = relay.OnMessage(password, nullptr, true);
  EXPECT_EQ(step.action, Action::kViolation);
  EXPECT_THAT(step.message, HasSubstr("authentication message"));
}

TEST_F(FrontendRelayTest, TooManyRefusalsWaitingEndTheSession) {
  verdict = ScriptedStage::Verdict::kRefuse;
  for (size_t i = 0; i < kMaxRefusalsInFlight; ++i) {
    ASSERT_EQ(relay.OnMessage(Query("drop table t"), nullptr, true).action,
              Action::kRelay)
        << i;
  }
  EXPECT_TRUE(callbacks.failed_sqlstate.empty());
  const auto step = relay.OnMessage(Query("drop table t"), nullptr, true);
  EXPECT_EQ(step.action, Action::kEnded);
  EXPECT_EQ(callbacks.failed_sqlstate, pgwire::kProgramLimitExceeded);
}

// OnBytes: a whole read of the client's bytes, what goes upstream.
struct Upstream : FrontendRelay::Output {
  void ToUpstream(absl::string_view bytes) override {
    sends.emplace_back(bytes);
  }
  bool MayTake(absl::string_view next) override {
    offered.emplace_back(next.substr(0, 1));
    return takes-- > 0;
  }
  std::vector<std::string> sends;
  std::vector<std::string> offered;
  int takes = 1000;
};

TEST_F(FrontendRelayTest, ARunOfRelayedMessagesGoesUpstreamAsOneSlice) {
  const std::string a = Query("select 1"), b = Query("select 2");
  const std::string half = Query("select 3").substr(0, 7);
  Upstream up;
  const auto read = relay.OnBytes(a + b + half, nullptr, true, &up);
  EXPECT_EQ(read.end, FrontendRelay::Read::End::kMore);
  EXPECT_EQ(read.used, a.size() + b.size());
  EXPECT_THAT(up.sends, ElementsAre(a + b));
  EXPECT_THAT(seen, ElementsAre("Q", "Q"));
}

TEST_F(FrontendRelayTest, ARefusedMessagesSubstituteGoesInItsPlaceInOrder) {
  const std::string a = Query("select 1"), b = Query("drop table t");
  Upstream up;
  verdict = ScriptedStage::Verdict::kRefuse;
  const auto read = relay.OnBytes(a + b, nullptr, true, &up);
  EXPECT_EQ(read.used, a.size() + b.size());
  // Both refused here: each substitute in its message's place, never the
  // refused text.
  ASSERT_EQ(up.sends.size(), 2u);
  for (const std::string& sent : up.sends) {
    EXPECT_EQ(sent.find("drop table"), std::string::npos);
    EXPECT_EQ(sent.find("select 1"), std::string::npos);
  }
  EXPECT_EQ(refusals.size(), 2u);
}

TEST_F(FrontendRelayTest, AHeldMessageStaysUnreadAndWhatCameBeforeGoes) {
  const std::string a = Query("select 1"), b = Query("select 2");
  Upstream up;
  const auto first = relay.OnBytes(a, nullptr, true, &up);
  ASSERT_EQ(first.used, a.size());
  verdict = ScriptedStage::Verdict::kHold;
  up.sends.clear();
  const auto read = relay.OnBytes(b + a, nullptr, true, &up);
  EXPECT_EQ(read.end, FrontendRelay::Read::End::kHeld);
  EXPECT_EQ(read.used, 0u);
  EXPECT_THAT(up.sends, IsEmpty());
}

TEST_F(FrontendRelayTest, AMessageTheOutputMayNotTakeYetStaysUnread) {
  const std::string a = Query("select 1"), b = Query("select 2");
  Upstream up;
  up.takes = 1;
  const auto read = relay.OnBytes(a + b, nullptr, true, &up);
  EXPECT_EQ(read.end, FrontendRelay::Read::End::kMore);
  EXPECT_EQ(read.used, a.size());
  EXPECT_THAT(up.offered, ElementsAre("Q", "Q"));
  EXPECT_THAT(up.sends, ElementsAre(a));
  // Before the relay (the login's own messages) nothing is priced.
  Upstream before;
  before.takes = 0;
  EXPECT_EQ(relay.OnBytes(a, nullptr, false, &before).used, a.size());
  EXPECT_THAT(before.offered, IsEmpty());
}

TEST_F(FrontendRelayTest, TerminateEndsTheReadAfterItIsRelayed) {
  std::string terminate;
  pgwire::WriteTerminate(&terminate);
  const std::string a = Query("select 1");
  Upstream up;
  const auto read = relay.OnBytes(a + terminate + a, nullptr, true, &up);
  EXPECT_EQ(read.end, FrontendRelay::Read::End::kTerminate);
  EXPECT_EQ(read.used, a.size() + terminate.size());
  EXPECT_THAT(up.sends, ElementsAre(a + terminate));
}

TEST_F(FrontendRelayTest, AViolationOrTheSessionsEndSendsNothingMore) {
  const std::string a = Query("select 1");
  Upstream up;
  const auto bad = relay.OnBytes(a + std::string("Q\0\0\0\1", 5), nullptr,
                                 true, &up);
  EXPECT_EQ(bad.end, FrontendRelay::Read::End::kViolation);
  EXPECT_FALSE(bad.message.empty());
  EXPECT_THAT(up.sends, IsEmpty());  // not even the valid message before

  Upstream after;
  verdict = ScriptedStage::Verdict::kFail;
  const auto ended = relay.OnBytes(a + a, nullptr, true, &after);
  EXPECT_EQ(ended.end, FrontendRelay::Read::End::kEnded);
  EXPECT_THAT(after.sends, IsEmpty());
}

}  // namespace
}  // namespace warden::dataplane::session
