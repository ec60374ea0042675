// What the database's messages mean once the relay runs: the first
// ReadyForQuery, batches ended for the correlator, refusals taken back
// from PostgreSQL's errors, FATAL errors noted, the cancel key kept from
// the client, and what ends the session; and what the stages see.
#include "dataplane/session/backend_relay.h"

#include <arpa/inet.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/messages.h"
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
using Action = BackendRelay::Step::Action;
using pgwire::testing::Body;

std::string ReadyBody(char status) {
  std::string m;
  pgwire::WriteReadyForQuery(&m, status);
  return Body(m);
}
std::string ErrorBody(absl::string_view severity, absl::string_view sqlstate,
                      absl::string_view message) {
  std::string m;
  pgwire::WriteErrorResponse(&m, severity, sqlstate, message);
  return Body(m);
}
std::string CompleteBody(absl::string_view tag) {
  std::string m;
  pgwire::WriteCommandComplete(&m, tag);
  return Body(m);
}
std::string KeyBody(int32_t pid, int32_t secret) {
  std::string m;
  pgwire::WriteBackendKeyData(&m, pid, secret);
  return Body(m);
}
std::string ParameterStatusBody(absl::string_view name,
                                absl::string_view value) {
  std::string m;
  pgwire::WriteParameterStatus(&m, name, value);
  return Body(m);
}

// Records what the stages were shown.
class RecordingStage : public stages::Stage {
 public:
  explicit RecordingStage(std::vector<std::string>* seen) : seen_(seen) {}
  stages::StageResult OnFrontend(const stages::Frontend&, bool) override {
    return stages::StageResult::kContinue;
  }
  void OnBackend(const stages::Backend& m) override {
    std::string what(1, m.type);
    if (m.refusal_taken)
      what += m.refused_parse ? " refused parse" : " refused";
    seen_->push_back(what);
  }

 private:
  std::vector<std::string>* seen_;
};

struct BackendRelayTest : ::testing::Test {
  BackendRelayTest() { chain.Add(std::make_unique<RecordingStage>(&seen)); }
  // The first ReadyForQuery, ending the database's startup.
  void Start(BackendRelay& relay) {
    ASSERT_EQ(relay.OnMessage('Z', ReadyBody('I')).action, Action::kRelay);
    ASSERT_TRUE(relay.ready());
  }

  stages::FakeCallbacks callbacks;
  stages::Chain chain{&callbacks};
  Correlator correlator;
  Refusals refusals;
  std::vector<std::string> seen;
  BackendRelay relay{/*governed=*/true, &correlator, &refusals, &chain};
};

TEST_F(BackendRelayTest, TheFirstReadyForQueryOnlyEndsTheStartup) {
  EXPECT_FALSE(relay.ready());
  // Before it: the backend's cancel key, which the client does not get.
  const auto key = relay.OnMessage('K', KeyBody(1234, 5678));
  EXPECT_EQ(key.action, Action::kBackendKey);
  EXPECT_EQ(key.key.pid, 1234);
  EXPECT_EQ(key.key.secret, 5678);
  EXPECT_EQ(relay.OnMessage('Z', ReadyBody('I')).action, Action::kRelay);
  EXPECT_TRUE(relay.ready());
  EXPECT_EQ(correlator.pipeline().syncs_done, 0u);
  EXPECT_THAT(seen, IsEmpty());
}

TEST_F(BackendRelayTest, LaterReadyForQueriesEndBatches) {
  Start(relay);
  correlator.Relayed('Q');
  EXPECT_TRUE(correlator.busy());
  relay.OnMessage('C', CompleteBody("SELECT 1"));
  EXPECT_EQ(relay.OnMessage('Z', ReadyBody('I')).action, Action::kRelay);
  EXPECT_EQ(correlator.pipeline().syncs_done, 1u);
  EXPECT_FALSE(correlator.busy());
  EXPECT_THAT(seen, ElementsAre("C", "Z"));
}

TEST_F(BackendRelayTest, APoisonsErrorIsReplacedByItsRefusal) {
  Start(relay);
  const std::string poison = refusals.Queue("the refusal", 1, /*parse=*/true);
  correlator.Relayed('P');
  correlator.Relayed('S');
  const auto step = relay.OnMessage(
      'E', ErrorBody("ERROR", "42601",
                     "syntax error at or near \"" + poison + "\""));
  EXPECT_EQ(step.action, Action::kReplace);
  EXPECT_EQ(step.replacement, "the refusal");
  EXPECT_TRUE(refusals.empty());
  EXPECT_THAT(seen, ElementsAre("E refused parse"));
  EXPECT_FALSE(relay.fatal());
}

TEST_F(BackendRelayTest, OtherErrorsGoOnAndFatalOnesAreNoted) {
  Start(relay);
  refusals.Queue("a refusal", 1);
  EXPECT_EQ(
      relay.OnMessage('E', ErrorBody("ERROR", "22012", "division by zero"))
          .action,
      Action::kRelay);
  EXPECT_FALSE(refusals.empty());
  EXPECT_FALSE(relay.fatal());
  EXPECT_EQ(relay
                .OnMessage('E', ErrorBody("FATAL", pgwire::kAdminShutdown,
                                          "terminating connection"))
                .action,
            Action::kRelay);
  EXPECT_TRUE(relay.fatal());
  EXPECT_THAT(seen, ElementsAre("E", "E"));
}

TEST_F(BackendRelayTest, APanicIsFatalToo) {
  relay.OnMessage('E', ErrorBody("PANIC", "XX000", "the server crashed"));
  EXPECT_TRUE(relay.fatal());
  // Before the first ReadyForQuery the stages are not told.
  EXPECT_THAT(seen, IsEmpty());
}

TEST_F(BackendRelayTest, RefusalsOfABatchPostgresSkippedGoWithItsEnd) {
  Start(relay);
  refusals.Queue("skipped", 1);
  correlator.Relayed('S');
  relay.OnMessage('Z', ReadyBody('I'));
  EXPECT_TRUE(refusals.empty());
}

TEST_F(BackendRelayTest, ASecondOrLateCancelKeyEndsTheSession) {
  Start(relay);
  const auto step = relay.OnMessage('K', KeyBody(1, 2));
  EXPECT_EQ(step.action, Action::kFail);
  EXPECT_EQ(step.sqlstate, pgwire::kConnectionFailure);
  EXPECT_EQ(step.reason, warden::v1::SESSION_END_REASON_UPSTREAM);
}

TEST_F(BackendRelayTest, AnAuthenticationRequestDuringTheRelayEndsTheSession) {
  Start(relay);
  std::string m;
  pgwire::WriteAuthenticationCleartextPassword(&m);
  const auto step = relay.OnMessage('R', Body(m));
  EXPECT_EQ(step.action, Action::kFail);
  EXPECT_THAT(step.message, HasSubstr("unexpected authentication request"));
}

TEST_F(BackendRelayTest, ASettingThatChangesHowStatementsReadEndsTheSession) {
  const auto step = relay.Screen(
      'S', ParameterStatusBody("standard_conforming_strings", "off"));
  EXPECT_EQ(step.action, Action::kFail);
  EXPECT_EQ(step.sqlstate, pgwire::kInsufficientPrivilege);
  EXPECT_EQ(step.reason, warden::v1::SESSION_END_REASON_POLICY);
  EXPECT_THAT(step.message,
              HasSubstr("the database now reads statements differently"));
  EXPECT_EQ(
      relay.Screen('S', ParameterStatusBody("application_name", "psql")).action,
      Action::kRelay);
  EXPECT_EQ(
      relay
          .Screen('S', ParameterStatusBody("standard_conforming_strings", "on"))
          .action,
      Action::kRelay);
}

TEST_F(BackendRelayTest, WithoutAPolicySettingsAreNotScreened) {
  BackendRelay ungoverned(/*governed=*/false, &correlator, &refusals, &chain);
  EXPECT_EQ(ungoverned
                .Screen('S', ParameterStatusBody("standard_conforming_strings",
                                                 "off"))
                .action,
            Action::kRelay);
}

TEST_F(BackendRelayTest, ExecutionsAreAnsweredForBackpressure) {
  Start(relay);
  for (int i = 0; i < 3; ++i) {
    correlator.Relayed('B');
    correlator.Relayed('E');
  }
  correlator.Relayed('S');
  EXPECT_EQ(correlator.unanswered(), 3);
  relay.OnMessage('C', CompleteBody("SELECT 1"));
  std::string suspended;
  pgwire::WriteEmptyQueryResponse(&suspended);
  relay.OnMessage('I', Body(suspended));
  EXPECT_EQ(correlator.unanswered(), 1);
  EXPECT_EQ(relay.OnMessage('D', std::string("\0\0", 2)).action,
            Action::kRelay);
  EXPECT_EQ(correlator.unanswered(), 1);
  EXPECT_THAT(seen, ElementsAre("C", "I", "D"));
}

// Every answer of an extended-query message reaches the stages, in order,
// so the audit stage can tell which message an error answers (a failed
// Bind fails its own execution); ParameterDescription, which is always
// followed by RowDescription or NoData, and notices do not.
TEST_F(BackendRelayTest, TheStagesSeeTheAnswerOfEveryMessage) {
  Start(relay);
  for (const char type : {'P', 'B', 'D', 'E', 'C', 'S'}) {
    correlator.Relayed(type);
  }
  for (const char type : {'1', '2', 't', 'n', 'T', '3'}) {
    EXPECT_EQ(relay.OnMessage(type, "").action, Action::kRelay) << type;
  }
  EXPECT_THAT(seen, ElementsAre("1", "2", "n", "T", "3"));
}

// OnBytes: a whole read of the database's bytes, what the client gets.
struct Client : BackendRelay::Output {
  void ToClient(absl::string_view bytes) override { sends.emplace_back(bytes); }
  bool logging_in() const override { return login_messages > 0; }
  bool OnLoginMessage(char type, absl::string_view) override {
    login.push_back(type);
    --login_messages;
    return true;
  }
  bool OnBackendKey(const pgwire::BackendKeyData& key) override {
    ToClient("own key for " + std::to_string(key.pid));
    return true;
  }
  void Fail(absl::string_view sqlstate, absl::string_view message,
            warden::v1::SessionEndReason) override {
    failed = absl::StrCat(sqlstate, " ", message);
  }
  bool ended() const override { return !failed.empty(); }
  std::vector<std::string> sends;
  std::string login;
  int login_messages = 0;
  std::string failed;
};

std::string Message(char type, const std::string& body) {
  std::string m(1, type);
  const uint32_t n = htonl(static_cast<uint32_t>(body.size() + 4));
  m.append(reinterpret_cast<const char*>(&n), 4);
  return m + body;
}

TEST_F(BackendRelayTest, OnBytesHandsTheLoginItsMessagesThenRelays) {
  const std::string auth_ok = Message('R', std::string("\0\0\0\0", 4));
  const std::string param = Message('S', ParameterStatusBody("TimeZone", "UTC"));
  const std::string key = Message('K', KeyBody(42, 7));
  const std::string ready = Message('Z', ReadyBody('I'));
  const std::string half = Message('C', CompleteBody("SELECT 1")).substr(0, 6);
  Client client;
  client.login_messages = 1;
  const size_t used = relay.OnBytes(auth_ok + param + key + ready + half,
                                    /*max_message_bytes=*/1 << 20, absl::Now(),
                                    &client);
  EXPECT_EQ(used, auth_ok.size() + param.size() + key.size() + ready.size());
  EXPECT_EQ(client.login, "R");
  // The login's message is not the client's; the backend's key is
  // replaced by the session's own, in order.
  EXPECT_THAT(client.sends, ElementsAre(param, "own key for 42", ready));
  EXPECT_TRUE(relay.ready());
  EXPECT_TRUE(client.failed.empty());
}

TEST_F(BackendRelayTest, OnBytesFailsOnAnInvalidOrOversizedMessage) {
  Start(relay);
  const std::string ready = Message('Z', ReadyBody('I'));
  Client invalid;
  EXPECT_EQ(relay.OnBytes(ready + Message('Z', "XY"), 1 << 20, absl::Now(),
                          &invalid), 0u);
  EXPECT_THAT(invalid.failed, HasSubstr("invalid message from the upstream"));
  // Nothing reaches the client after the session's last word, not even
  // the valid message before.
  EXPECT_THAT(invalid.sends, IsEmpty());

  Client oversized;
  const std::string row = Message('D', std::string(100, 'x'));
  EXPECT_EQ(relay.OnBytes(row, /*max_message_bytes=*/50, absl::Now(),
                          &oversized), 0u);
  EXPECT_THAT(oversized.failed, HasSubstr("invalid message"));
}

TEST_F(BackendRelayTest, OnBytesReplacesAPoisonsErrorInPlace) {
  Start(relay);
  const std::string poison = refusals.Queue("the refusal", 1, /*parse=*/false);
  correlator.Relayed('Q');
  const std::string error = Message(
      'E', ErrorBody("ERROR", "42601",
                     "syntax error at or near \"" + poison + "\""));
  const std::string ready = Message('Z', ReadyBody('I'));
  Client client;
  EXPECT_EQ(relay.OnBytes(error + ready, 1 << 20, absl::Now(), &client),
            error.size() + ready.size());
  EXPECT_THAT(client.sends, ElementsAre("the refusal", ready));
}

}  // namespace
}  // namespace warden::dataplane::session
