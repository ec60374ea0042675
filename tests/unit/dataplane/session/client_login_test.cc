// A client's login, played packet by packet against fake session callbacks
// and a scripted Authenticator: what is answered to each startup packet,
// what is refused and with which SQLSTATE, in which order the exchange
// runs, what the audit trail gets, and what the session is handed.
#include "dataplane/session/client_login.h"

#include <openssl/ssl.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "dataplane/gate/gate.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/sqlstate.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::dataplane::session {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::StartsWith;

using Params = std::vector<std::pair<std::string, std::string>>;

// ---------------------------------------------------------------------------
// Packets.

std::string Startup(const Params& params) {
  std::string m;
  pgwire::WriteStartupMessage(&m, params);
  return m;
}
std::string AliceStartup() {
  return Startup(
      {{"user", "alice"}, {"database", "shop"}, {"application_name", "psql"}});
}
// The same packet claiming protocol 3.`minor`.
std::string WithMinorVersion(std::string packet, uint8_t minor) {
  packet[7] = static_cast<char>(minor);
  return packet;
}
std::string SslRequest() {
  std::string m;
  pgwire::WriteSslRequest(&m);
  return m;
}
std::string Password(absl::string_view data) {
  std::string m;
  pgwire::WritePasswordMessage(&m, data);
  return m;
}
std::string Query(absl::string_view sql) {
  std::string m;
  pgwire::WriteQuery(&m, sql);
  return m;
}

// ---------------------------------------------------------------------------
// Fakes.

AuthStep Continue(std::string reply) {
  AuthStep step;
  step.state = AuthStep::State::kContinue;
  step.reply = std::move(reply);
  return step;
}
AuthStep Success(std::string user, std::string reply = "") {
  AuthStep step;
  step.state = AuthStep::State::kSuccess;
  step.reply = std::move(reply);
  step.identity.set_user(std::move(user));
  step.identity.set_auth_method("scram-sha-256");
  step.identity.add_groups("eng");
  return step;
}
AuthStep Failure(std::string why) {
  AuthStep step;
  step.state = AuthStep::State::kFailure;
  step.error = absl::UnauthenticatedError(std::move(why));
  step.client_sqlstate = pgwire::kInvalidPassword;
  step.client_error = "password authentication failed for user \"alice\"";
  return step;
}

// Answers Start and then each message with the next scripted step.
class ScriptedAuthenticator : public Authenticator {
 public:
  std::unique_ptr<AuthExchange> Begin(const AuthRequest& request) override {
    ++begun;
    this->request = request;
    return std::make_unique<Exchange>(this);
  }

  std::deque<AuthStep> script;
  int begun = 0;
  AuthRequest request;
  std::vector<std::string> messages;  // bodies the exchange was given

 private:
  class Exchange : public AuthExchange {
   public:
    explicit Exchange(ScriptedAuthenticator* owner) : owner_(owner) {}
    AuthStep Start() override { return Next(); }
    AuthStep OnMessage(absl::string_view body) override {
      owner_->messages.emplace_back(body);
      return Next();
    }

   private:
    AuthStep Next() {
      if (owner_->script.empty()) return Failure("the script ran out");
      AuthStep step = std::move(owner_->script.front());
      owner_->script.pop_front();
      return step;
    }
    ScriptedAuthenticator* owner_;
  };
};

// The session, as the login sees it.
class FakeSession : public ClientLogin::Callbacks {
 public:
  void SendToClient(absl::string_view bytes) override {
    sent.append(bytes.data(), bytes.size());
  }
  void Fail(absl::string_view sqlstate, absl::string_view message,
            warden::v1::SessionEndReason reason) override {
    calls.push_back("fail");
    failed_sqlstate = std::string(sqlstate);
    failed_message = std::string(message);
    failed_reason = reason;
    closed = true;
  }
  bool ended() const override { return closed; }
  void StartClientTls(SSL_CTX* context) override {
    calls.push_back("tls");
    tls_started = context;
  }
  bool ClientTls() const override { return client_tls; }
  std::string ClientCertificatePem() const override {
    ++certificate_asked;
    return certificate;
  }
  void OnCancelRequest(int32_t pid, int32_t secret) override {
    calls.push_back("cancel");
    cancel = std::make_pair(pid, secret);
    closed = true;
  }
  warden::v1::AuditEvent NewEvent(
      warden::v1::AuditEventKind kind) const override {
    warden::v1::AuditEvent event;
    event.set_kind(kind);
    *event.mutable_identity() = *identity;
    return event;
  }
  bool Audit(warden::v1::AuditEvent event) override {
    events.push_back(std::move(event));
    return audit_ok;
  }
  void OnIdentityProven() override { calls.push_back("proven"); }
  std::optional<absl::Duration> LoginAuditWait() override {
    if (audit_waits.empty()) return std::nullopt;
    const absl::Duration wait = audit_waits.front();
    audit_waits.erase(audit_waits.begin());
    return wait;
  }
  void ResumeLoginAfter(absl::Duration delay) override {
    calls.push_back("wait");
    resume_delays.push_back(delay);
  }
  void OnLoggedIn(ClientLogin::Admission admission) override {
    calls.push_back("logged in");
    admitted = std::move(admission);
  }

  // Set by the test.
  const warden::v1::Identity* identity = nullptr;
  bool client_tls = false;
  std::string certificate;
  bool audit_ok = true;
  // What LoginAuditWait answers, one call each (then nullopt).
  std::vector<absl::Duration> audit_waits;
  // Recorded.
  std::string sent;
  std::vector<std::string> calls;
  std::string failed_sqlstate;
  std::string failed_message;
  warden::v1::SessionEndReason failed_reason =
      warden::v1::SESSION_END_REASON_UNSPECIFIED;
  bool closed = false;
  SSL_CTX* tls_started = nullptr;
  mutable int certificate_asked = 0;
  std::optional<std::pair<int32_t, int32_t>> cancel;
  std::vector<warden::v1::AuditEvent> events;
  std::optional<ClientLogin::Admission> admitted;
  std::vector<absl::Duration> resume_delays;
};

struct ClientLoginTest : ::testing::Test {
  ClientLoginTest() {
    listener.name = "prod";
    listener.environment = "prod";
    environment.name = "prod";
    config::Database shop;
    shop.name = "shop";
    shop.upstream.user = "warden_svc";
    shop.upstream.password = "svc-pw";
    shop.upstream.roles["analyst"] = "analyst-pw";
    environment.databases.push_back(shop);
    session.identity = &identity;
  }

  ClientLogin& Login() {
    ClientLogin::Context context;
    context.listener = &listener;
    context.environment = &environment;
    context.authenticator = &authenticator;
    context.tls = tls;
    context.login_failures = &login_failures;
    context.spool_fill = [this] { return spool_fill; };
    context.recording = recording;
    context.may_record = &may_record;
    context.governed = governed;
    context.gate = [this] { return gate; };
    context.config_user_names = &config_user_names;
    context.config_user_lookalikes = &config_user_lookalikes;
    context.peer_address = "10.0.0.7:40000";
    context.peer_host = "10.0.0.7";
    context.identity = &identity;
    context.subject = &subject;
    context.stage_callbacks = nullptr;  // the directory stage is not run
    login = std::make_unique<ClientLogin>(std::move(context), &session);
    return *login;
  }

  // The whole of `bytes`, as one read.
  size_t Feed(absl::string_view bytes) { return login->OnClientBytes(bytes); }

  const warden::v1::AuditEvent* Event(warden::v1::AuditEventKind kind) {
    for (const auto& e : session.events) {
      if (e.kind() == kind) return &e;
    }
    return nullptr;
  }

  config::Listener listener;
  config::Environment environment;
  ScriptedAuthenticator authenticator;
  SSL_CTX* tls = nullptr;
  warden::LoginFailures login_failures;
  double spool_fill = 0;
  bool recording = true;
  std::function<absl::Status(const std::string&)> may_record;
  bool governed = false;
  std::shared_ptr<const gate::Gate> gate;
  absl::flat_hash_set<std::string> config_user_names;
  LookAlikeIndex config_user_lookalikes;
  warden::v1::Identity identity;
  policy::engine::Subject subject;
  FakeSession session;
  std::unique_ptr<ClientLogin> login;
};

// ---------------------------------------------------------------------------
// Startup packets.

TEST_F(ClientLoginTest, SslRequestWithoutTlsIsDeclinedAndTheLoginGoesOn) {
  Login();
  const std::string ssl = SslRequest();
  EXPECT_EQ(Feed(ssl), ssl.size());
  EXPECT_EQ(session.sent, "N");
  EXPECT_EQ(session.tls_started, nullptr);
  authenticator.script.push_back(Continue("challenge"));
  const std::string startup = AliceStartup();
  EXPECT_EQ(Feed(startup), startup.size());
  EXPECT_EQ(session.sent, "Nchallenge");
  EXPECT_EQ(authenticator.begun, 1);
  EXPECT_EQ(authenticator.request.user, "alice");
  EXPECT_EQ(authenticator.request.database, "shop");
  EXPECT_EQ(authenticator.request.environment, "prod");
  EXPECT_FALSE(authenticator.request.tls);
  EXPECT_FALSE(session.closed);
}

TEST_F(ClientLoginTest, SslRequestOnATlsListenerIsAcceptedAndStartsTls) {
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  ASSERT_NE(context, nullptr);
  tls = context;
  Login();
  const std::string ssl = SslRequest();
  EXPECT_EQ(Feed(ssl), ssl.size());
  EXPECT_EQ(session.sent, "S");
  EXPECT_EQ(session.tls_started, context);
  EXPECT_FALSE(session.closed);
  // The startup packet that follows, through TLS, is marked as such.
  session.client_tls = true;
  authenticator.script.push_back(Continue("challenge"));
  Feed(AliceStartup());
  EXPECT_TRUE(authenticator.request.tls);
  SSL_CTX_free(context);
}

TEST_F(ClientLoginTest, BytesSentBehindAnSslRequestAreRefused) {
  // CVE-2021-23214: what arrives before the handshake is not encrypted.
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  ASSERT_NE(context, nullptr);
  tls = context;
  Login();
  Feed(SslRequest() + AliceStartup());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kProtocolViolation);
  EXPECT_EQ(session.failed_message,
            "unencrypted data received after SSLRequest");
  EXPECT_EQ(session.sent, "");  // no 'S'
  EXPECT_EQ(session.tls_started, nullptr);
  EXPECT_EQ(authenticator.begun, 0);
  SSL_CTX_free(context);
}

TEST_F(ClientLoginTest, WithoutTlsOnlyTheSslRequestIsUsedAndTheRestWaits) {
  Login();
  const std::string ssl = SslRequest();
  EXPECT_EQ(Feed(ssl + AliceStartup()), ssl.size());
  EXPECT_EQ(session.sent, "N");
  EXPECT_EQ(authenticator.begun, 0);
}

TEST_F(ClientLoginTest, ASecondSslRequestIsAProtocolViolation) {
  Login();
  Feed(SslRequest());
  Feed(SslRequest());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kProtocolViolation);
  EXPECT_EQ(session.failed_message, "SSLRequest received twice");
  EXPECT_EQ(session.failed_reason, warden::v1::SESSION_END_REASON_POLICY);
}

TEST_F(ClientLoginTest, GssEncryptionIsDeclined) {
  Login();
  std::string gss;
  pgwire::WriteGssEncRequest(&gss);
  EXPECT_EQ(Feed(gss), gss.size());
  EXPECT_EQ(session.sent, "N");
  // An SSLRequest may still follow (libpq's gssencmode=prefer, then SSL).
  Feed(SslRequest());
  EXPECT_EQ(session.sent, "NN");
  EXPECT_FALSE(session.closed);
}

TEST_F(ClientLoginTest, ACancelRequestIsHandedToTheSession) {
  Login();
  std::string cancel;
  pgwire::WriteCancelRequest(&cancel, 4242, -17);
  EXPECT_EQ(Feed(cancel), cancel.size());
  ASSERT_TRUE(session.cancel.has_value());
  EXPECT_EQ(session.cancel->first, 4242);
  EXPECT_EQ(session.cancel->second, -17);
  EXPECT_EQ(authenticator.begun, 0);
  EXPECT_EQ(session.sent, "");
}

TEST_F(ClientLoginTest, APartialStartupPacketWaitsForTheRest) {
  Login();
  authenticator.script.push_back(Continue("challenge"));
  const std::string startup = AliceStartup();
  EXPECT_EQ(Feed(startup.substr(0, 3)), 0u);
  EXPECT_EQ(Feed(startup.substr(0, startup.size() - 1)), 0u);
  EXPECT_EQ(authenticator.begun, 0);
  EXPECT_FALSE(session.closed);
  EXPECT_EQ(Feed(startup), startup.size());
  EXPECT_EQ(authenticator.begun, 1);
}

TEST_F(ClientLoginTest, MalformedStartupPacketsAreProtocolViolations) {
  std::string short_length("\0\0\0\x04\0\0\0\0", 8);  // length < 8
  std::string protocol2 = AliceStartup();
  protocol2[5] = 2;  // major version 2
  std::string no_user = Startup({{"database", "shop"}});
  std::string unterminated = AliceStartup();
  unterminated.back() = 'x';  // no final NUL
  std::string bad_ssl = SslRequest() + "xx";
  bad_ssl[3] = 10;  // an SSLRequest of 10 bytes
  for (const std::string& packet :
       {short_length, protocol2, no_user, unterminated, bad_ssl}) {
    session = FakeSession();
    session.identity = &identity;
    Login();
    EXPECT_EQ(Feed(packet), 0u);
    EXPECT_EQ(session.failed_sqlstate, pgwire::kProtocolViolation)
        << absl::CEscape(packet);
    EXPECT_EQ(session.failed_reason, warden::v1::SESSION_END_REASON_POLICY);
    EXPECT_EQ(session.sent, "");
  }
  EXPECT_EQ(authenticator.begun, 0);
}

TEST_F(ClientLoginTest, ATlsOnlyListenerRefusesAPlaintextStartup) {
  listener.tls_mode = config::ClientTlsMode::kRequire;
  Login();
  Feed(AliceStartup());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kInvalidAuthorization);
  EXPECT_THAT(session.failed_message, HasSubstr("requires TLS"));
  EXPECT_EQ(authenticator.begun, 0);
  EXPECT_THAT(session.events, IsEmpty());
}

TEST_F(ClientLoginTest, ReplicationConnectionsAreRefused) {
  Login();
  Feed(Startup({{"user", "alice"}, {"replication", "database"}}));
  EXPECT_EQ(session.failed_sqlstate, pgwire::kFeatureNotSupported);
  EXPECT_EQ(authenticator.begun, 0);
}

TEST_F(ClientLoginTest, ProtocolOptionsAndNewerMinorVersionsAreNegotiatedDown) {
  Login();
  authenticator.script.push_back(Success("alice"));
  Feed(WithMinorVersion(Startup({{"user", "alice"},
                                 {"database", "shop"},
                                 {"replication", "off"},
                                 {"_pq_.compression", "on"},
                                 {"TimeZone", "UTC"}}),
                        2));
  std::string negotiate;
  pgwire::WriteNegotiateProtocolVersion(&negotiate, 0, {"_pq_.compression"});
  EXPECT_THAT(session.sent, StartsWith(negotiate));
  ASSERT_TRUE(session.admitted.has_value());
  // Neither the option nor replication=off reaches the database.
  EXPECT_THAT(session.admitted->startup_params,
              ElementsAre(Pair("TimeZone", "UTC")));
}

TEST_F(ClientLoginTest, ANewerMinorVersionAloneIsNegotiatedDownToo) {
  Login();
  authenticator.script.push_back(Continue("challenge"));
  Feed(WithMinorVersion(AliceStartup(), 2));
  std::string negotiate;
  pgwire::WriteNegotiateProtocolVersion(&negotiate, 0, {});
  EXPECT_EQ(session.sent, negotiate + "challenge");
}

TEST_F(ClientLoginTest, TheDatabaseDefaultsToTheUserName) {
  Login();
  authenticator.script.push_back(Failure("no"));
  Feed(Startup({{"user", "shop"}}));
  EXPECT_EQ(authenticator.request.database, "shop");
}

TEST_F(ClientLoginTest, AGovernedProxyJudgesStartupParametersBeforeTheLogin) {
  governed = true;
  Login();
  Feed(Startup({{"user", "alice"},
                {"database", "shop"},
                {"session_replication_role", "replica"}}));
  EXPECT_EQ(session.failed_sqlstate, pgwire::kRejectedConnection);
  EXPECT_THAT(session.failed_message, StartsWith("Warden: "));
  EXPECT_EQ(authenticator.begun, 0);
}

TEST_F(ClientLoginTest, AnEnvironmentThisProxyMayNotRecordIsRefused) {
  may_record = [](const std::string& environment) {
    return absl::PermissionDeniedError("not " + environment);
  };
  Login();
  Feed(AliceStartup());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kRejectedConnection);
  EXPECT_EQ(session.failed_message, "Warden: not prod");
  EXPECT_EQ(authenticator.begun, 0);
}

TEST_F(ClientLoginTest, WithoutAuditTheEnvironmentIsNotAsked) {
  recording = false;
  int asked = 0;
  may_record = [&asked](const std::string&) {
    ++asked;
    return absl::PermissionDeniedError("no");
  };
  Login();
  authenticator.script.push_back(Continue("challenge"));
  Feed(AliceStartup());
  EXPECT_EQ(asked, 0);
  EXPECT_FALSE(session.closed);
}

TEST_F(ClientLoginTest,
       AnAddressThatKeepsFailingIsRefusedBeforeAuthenticating) {
  login_failures.set_options({absl::Seconds(60), 20, 1});
  Login();
  authenticator.script.push_back(Failure("wrong password"));
  Feed(AliceStartup());
  ASSERT_EQ(session.failed_sqlstate, pgwire::kInvalidPassword);
  // The next connection from the same address.
  session = FakeSession();
  session.identity = &identity;
  Login();
  Feed(AliceStartup());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kTooManyConnections);
  EXPECT_EQ(authenticator.begun, 1);
  EXPECT_THAT(session.events, IsEmpty());
}

// ---------------------------------------------------------------------------
// Authentication.

TEST_F(ClientLoginTest, TheExchangeRunsInOrderAndLeavesTheRestForTheRelay) {
  Login();
  authenticator.script.push_back(Continue("first"));
  authenticator.script.push_back(Continue("second"));
  authenticator.script.push_back(Success("alice", "final"));
  Feed(AliceStartup());
  EXPECT_EQ(session.sent, "first");
  // Both answers and a pipelined query in one read: the query is not the
  // login's.
  const std::string answers = Password("one") + Password("two");
  EXPECT_EQ(Feed(answers + Query("select 1")), answers.size());
  EXPECT_THAT(authenticator.messages,
              ElementsAre(std::string("one\0", 4), std::string("two\0", 4)));
  EXPECT_EQ(session.sent, "firstsecondfinal");
  EXPECT_THAT(session.calls, ElementsAre("proven", "logged in"));
  EXPECT_EQ(identity.user(), "alice");
  EXPECT_EQ(subject.user, "alice");
  EXPECT_THAT(subject.groups, ElementsAre("eng"));
  EXPECT_EQ(subject.kind, "human");

  ASSERT_EQ(session.events.size(), 2u);
  const auto& auth = session.events[0];
  EXPECT_EQ(auth.kind(), warden::v1::AUDIT_EVENT_KIND_AUTHENTICATION);
  EXPECT_TRUE(auth.authentication().success());
  EXPECT_EQ(auth.authentication().method(), "scram-sha-256");
  EXPECT_EQ(auth.authentication().claimed_user(), "alice");
  EXPECT_EQ(auth.identity().user(), "alice");
  const auto& start = session.events[1];
  EXPECT_EQ(start.kind(), warden::v1::AUDIT_EVENT_KIND_SESSION_START);
  EXPECT_EQ(start.session_start().client_address(), "10.0.0.7:40000");
  EXPECT_EQ(start.session_start().database(), "shop");
  EXPECT_EQ(start.session_start().upstream_role(), "warden_svc");
  EXPECT_EQ(start.session_start().application_name(), "psql");
  EXPECT_FALSE(start.session_start().client_tls());

  ASSERT_TRUE(session.admitted.has_value());
  EXPECT_EQ(session.admitted->database_name, "shop");
  ASSERT_NE(session.admitted->database, nullptr);
  EXPECT_EQ(session.admitted->database, &environment.databases[0]);
  EXPECT_EQ(session.admitted->upstream_user, "warden_svc");
  EXPECT_EQ(session.admitted->upstream_password, "svc-pw");
  EXPECT_THAT(session.admitted->startup_params,
              ElementsAre(Pair("application_name", "psql")));
  EXPECT_EQ(session.admitted->directory, nullptr);         // not governed
  EXPECT_EQ(session.admitted->refusal_token.size(), 16u);  // audit is on
  // Done: nothing more is the login's.
  EXPECT_EQ(Feed(Password("three")), 0u);
  EXPECT_EQ(authenticator.messages.size(), 2u);
}

// The identity spent its audit budget (the spool is backlogged): the
// proven login records nothing and waits, twice here, then goes on as any
// other (red team: one identity's login loop filled the spool's reserve).
// Bytes the client sends meanwhile are not the login's.
TEST_F(ClientLoginTest, ALoginWaitsForItsIdentitysAuditBudget) {
  Login();
  authenticator.script.push_back(Success("alice", "final"));
  session.audit_waits = {absl::Milliseconds(1500), absl::Milliseconds(200)};
  Feed(AliceStartup());
  EXPECT_THAT(session.calls, ElementsAre("proven", "wait"));
  EXPECT_TRUE(session.events.empty());
  EXPECT_EQ(session.sent, "");
  EXPECT_EQ(Feed(Query("select 1")), 0u);
  login->ResumeAdmission();  // still over budget
  EXPECT_THAT(session.calls, ElementsAre("proven", "wait", "wait"));
  EXPECT_THAT(session.resume_delays,
              ElementsAre(absl::Milliseconds(1500), absl::Milliseconds(200)));
  EXPECT_TRUE(session.events.empty());
  login->ResumeAdmission();
  EXPECT_THAT(session.calls, ElementsAre("proven", "wait", "wait", "logged in"));
  EXPECT_EQ(session.sent, "final");
  ASSERT_EQ(session.events.size(), 2u);
  EXPECT_EQ(session.events[0].kind(), warden::v1::AUDIT_EVENT_KIND_AUTHENTICATION);
  EXPECT_EQ(session.events[1].kind(), warden::v1::AUDIT_EVENT_KIND_SESSION_START);
  // Once done, a resume is nothing.
  login->ResumeAdmission();
  EXPECT_EQ(session.calls.size(), 4u);
}

TEST_F(ClientLoginTest, AnAuthenticationMessageArrivingInPiecesWaits) {
  Login();
  authenticator.script.push_back(Continue("first"));
  authenticator.script.push_back(Success("alice"));
  Feed(AliceStartup());
  const std::string answer = Password("secret");
  EXPECT_EQ(Feed(answer.substr(0, 4)), 0u);
  EXPECT_THAT(authenticator.messages, IsEmpty());
  EXPECT_EQ(Feed(answer), answer.size());
  EXPECT_TRUE(session.admitted.has_value());
}

TEST_F(ClientLoginTest,
       OnlyAuthenticationResponsesAreAcceptedDuringTheExchange) {
  Login();
  authenticator.script.push_back(Continue("first"));
  Feed(AliceStartup());
  EXPECT_EQ(Feed(Query("select 1")), 0u);
  EXPECT_EQ(session.failed_sqlstate, pgwire::kProtocolViolation);
  EXPECT_EQ(session.failed_message,
            "expected an authentication response, got 'Q'");
  EXPECT_THAT(authenticator.messages, IsEmpty());
  EXPECT_THAT(session.events, IsEmpty());
}

// A 'p' message of `total` bytes (type byte included), or only its header.
std::string PasswordOfSize(size_t total, bool header_only) {
  const uint32_t length = static_cast<uint32_t>(total - 1);
  std::string m = "p";
  for (int shift = 24; shift >= 0; shift -= 8) {
    m.push_back(static_cast<char>((length >> shift) & 0xff));
  }
  if (!header_only) m.append(total - 5, 'x');
  return m;
}

TEST_F(ClientLoginTest, AuthenticationMessagesAreBoundedAsPostgresBoundsThem) {
  Login();
  authenticator.script.push_back(Continue("first"));
  authenticator.script.push_back(Continue("second"));
  Feed(AliceStartup());
  const std::string largest =
      PasswordOfSize(ClientLogin::kMaxAuthMessageSize, false);
  EXPECT_EQ(Feed(largest), largest.size());
  ASSERT_EQ(authenticator.messages.size(), 1u);
  // One byte more: refused on its header, without waiting for (or
  // buffering) its body.
  EXPECT_EQ(Feed(PasswordOfSize(ClientLogin::kMaxAuthMessageSize + 1, true)),
            0u);
  EXPECT_EQ(session.failed_sqlstate, pgwire::kProtocolViolation);
  EXPECT_EQ(authenticator.messages.size(), 1u);
}

TEST_F(ClientLoginTest, FailedCredentialsAreRecordedOnceAndEndTheSession) {
  Login();
  authenticator.script.push_back(Continue("first"));
  authenticator.script.push_back(Failure("wrong proof"));
  Feed(AliceStartup());
  Feed(Password("bad") + Password("never read"));
  EXPECT_EQ(session.failed_sqlstate, pgwire::kInvalidPassword);
  EXPECT_EQ(session.failed_message,
            "password authentication failed for user \"alice\"");
  EXPECT_EQ(authenticator.messages.size(), 1u);
  ASSERT_EQ(session.events.size(), 1u);
  const auto& a = session.events[0].authentication();
  EXPECT_FALSE(a.success());
  EXPECT_EQ(a.reason(), "wrong proof");
  EXPECT_EQ(a.method(), "scram-sha-256");  // the listener's
  EXPECT_EQ(a.claimed_user(), "alice");
  EXPECT_THAT(session.calls, ElementsAre("fail"));
}

// While the spool is backlogged a failed login is only counted for the
// summary, and a claimed user name is recorded capped (red team: 3 KB
// names from 20 addresses filled the spool in 2 s).
TEST_F(ClientLoginTest, FailedLoginsOfABackloggedSpoolGoToTheSummary) {
  spool_fill = 0.6;
  Login();
  authenticator.script.push_back(Failure("wrong proof"));
  Feed(AliceStartup());
  Feed(Password("bad"));
  EXPECT_EQ(session.failed_sqlstate, pgwire::kInvalidPassword);
  EXPECT_TRUE(session.events.empty());
  EXPECT_EQ(login_failures.suppressed_total(), 1u);
}

TEST_F(ClientLoginTest, AClaimedUserNameIsRecordedCapped) {
  Login();
  authenticator.script.push_back(Failure("wrong proof"));
  Feed(Startup({{"user", std::string(3000, 'm')}, {"database", "shop"}}));
  Feed(Password("bad"));
  ASSERT_EQ(session.events.size(), 1u);
  EXPECT_EQ(session.events[0].authentication().claimed_user(),
            std::string(256, 'm') + "... (3000 bytes)");
}

TEST_F(ClientLoginTest, TheClientsCertificateIsPassedOnOnlyOnCertListeners) {
  Login();
  session.certificate = "-----BEGIN CERTIFICATE-----";
  authenticator.script.push_back(Continue("first"));
  Feed(AliceStartup());
  EXPECT_EQ(session.certificate_asked, 0);
  EXPECT_EQ(authenticator.request.peer_certificate_pem, "");

  listener.auth = config::ClientAuthMethod::kCert;
  session = FakeSession();
  session.identity = &identity;
  session.certificate = "-----BEGIN CERTIFICATE-----";
  Login();
  // A certificate proves who it is at once: the login completes on the
  // startup packet.
  authenticator.script.push_back(Success("alice"));
  Feed(AliceStartup());
  EXPECT_EQ(authenticator.request.peer_certificate_pem,
            "-----BEGIN CERTIFICATE-----");
  EXPECT_TRUE(session.admitted.has_value());
}

// ---------------------------------------------------------------------------
// Admission.

TEST_F(ClientLoginTest, AnUnknownDatabaseIsRefusedWithOneAuthenticationEvent) {
  Login();
  authenticator.script.push_back(Success("alice", "final"));
  Feed(Startup({{"user", "alice"}, {"database", "nope"}}));
  EXPECT_EQ(session.failed_sqlstate, pgwire::kInvalidCatalogName);
  EXPECT_EQ(session.failed_message,
            "database \"nope\" does not exist in environment \"prod\"");
  EXPECT_EQ(session.sent, "final");  // the exchange's last word came first
  ASSERT_EQ(session.events.size(), 1u);
  EXPECT_EQ(session.events[0].kind(),
            warden::v1::AUDIT_EVENT_KIND_AUTHENTICATION);
  EXPECT_FALSE(session.events[0].authentication().success());
  EXPECT_EQ(session.events[0].authentication().reason(),
            session.failed_message);
  EXPECT_EQ(session.events[0].identity().user(), "alice");
  EXPECT_FALSE(session.admitted.has_value());
}

TEST_F(ClientLoginTest, ANameThatLooksLikeAConfigUsersIsRefused) {
  config_user_names.insert("alice");
  config_user_lookalikes.Add("alice");
  Login();
  authenticator.script.push_back(Success("AIice"));  // capital i
  Feed(AliceStartup());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kInvalidAuthorization);
  EXPECT_THAT(session.failed_message,
              HasSubstr("the user name looks like alice"));
  EXPECT_THAT(session.calls, ElementsAre("fail"));  // no budget switch
  ASSERT_EQ(session.events.size(), 1u);
  EXPECT_FALSE(session.events[0].authentication().success());
}

TEST_F(ClientLoginTest, AConfigUserIsNotALookAlikeOfItself) {
  config_user_names.insert("alice");
  config_user_lookalikes.Add("alice");
  Login();
  authenticator.script.push_back(Success("alice"));
  Feed(AliceStartup());
  EXPECT_TRUE(session.admitted.has_value());
}

TEST_F(ClientLoginTest, AMixedScriptNameIsRefused) {
  Login();
  authenticator.script.push_back(Success("\xd0\xb0lice"));  // Cyrillic a
  Feed(AliceStartup());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kInvalidAuthorization);
  EXPECT_THAT(session.failed_message, StartsWith("Warden: the user name "));
  EXPECT_FALSE(session.admitted.has_value());
}

TEST_F(ClientLoginTest, ALoginTheAuditTrailCannotRecordIsRefused) {
  session.audit_ok = false;
  Login();
  authenticator.script.push_back(Success("alice"));
  Feed(AliceStartup());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kInsufficientResources);
  EXPECT_EQ(session.failed_reason, warden::v1::SESSION_END_REASON_INTERNAL);
  ASSERT_EQ(session.events.size(), 1u);  // tried, then stopped
  EXPECT_FALSE(session.admitted.has_value());
}

TEST_F(ClientLoginTest, WithoutPolicyOrAuditNoRefusalTokenIsDrawn) {
  recording = false;
  Login();
  authenticator.script.push_back(Success("alice"));
  Feed(AliceStartup());
  ASSERT_TRUE(session.admitted.has_value());
  EXPECT_EQ(session.admitted->refusal_token, "");
  EXPECT_EQ(subject.user, "");  // nobody judges or records it
}

TEST_F(ClientLoginTest, AGovernedProxyWithoutABundleRefusesLogins) {
  governed = true;
  Login();
  authenticator.script.push_back(Success("alice"));
  Feed(AliceStartup());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kCannotConnectNow);
  ASSERT_EQ(session.events.size(), 1u);
  EXPECT_EQ(session.events[0].authentication().reason(),
            "no policy bundle yet");
  // The identity was proven; its budget pays for the refusal's event.
  EXPECT_THAT(session.calls, ElementsAre("proven", "fail"));
}

TEST_F(ClientLoginTest, TheDirectoryRefusesADeactivatedUser) {
  governed = true;
  warden::v1::PolicyBundle bundle;
  auto* alice = bundle.add_directory();
  alice->set_user_name("alice");
  alice->set_active(false);
  alice->set_inactive_because("deactivated by the identity provider (SCIM)");
  gate = std::make_shared<gate::Gate>(bundle, 10);
  Login();
  authenticator.script.push_back(Success("alice"));
  Feed(AliceStartup());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kInvalidAuthorization);
  EXPECT_THAT(session.failed_message, HasSubstr("deactivated"));
  ASSERT_EQ(session.events.size(), 1u);
  EXPECT_FALSE(session.events[0].authentication().success());
}

TEST_F(ClientLoginTest, AGovernedLoginHandsOverItsDirectoryStage) {
  governed = true;
  gate = std::make_shared<gate::Gate>(warden::v1::PolicyBundle(), 10);
  Login();
  authenticator.script.push_back(Success("alice"));
  Feed(AliceStartup());
  ASSERT_TRUE(session.admitted.has_value());
  EXPECT_NE(session.admitted->directory, nullptr);
}

TEST_F(ClientLoginTest, AnIdentityMappingPicksTheDatabaseRole) {
  governed = true;
  warden::v1::PolicyBundle bundle;
  auto* mapping = bundle.add_identity_mappings();
  mapping->set_name("analysts");
  mapping->set_default_role("analyst");
  mapping->set_source("mappings.yaml:1");
  gate = std::make_shared<gate::Gate>(bundle, 10);
  Login();
  authenticator.script.push_back(Success("alice"));
  Feed(AliceStartup());
  ASSERT_TRUE(session.admitted.has_value());
  EXPECT_EQ(session.admitted->upstream_user, "analyst");
  EXPECT_EQ(session.admitted->upstream_password, "analyst-pw");
  const auto* start = Event(warden::v1::AUDIT_EVENT_KIND_SESSION_START);
  ASSERT_NE(start, nullptr);
  EXPECT_EQ(start->session_start().upstream_role(), "analyst");
}

TEST_F(ClientLoginTest, ARoleWithoutCredentialsIsRefused) {
  governed = true;
  warden::v1::PolicyBundle bundle;
  auto* mapping = bundle.add_identity_mappings();
  mapping->set_name("auditors");
  mapping->set_default_role("auditor");
  mapping->set_source("mappings.yaml:1");
  gate = std::make_shared<gate::Gate>(bundle, 10);
  Login();
  authenticator.script.push_back(Success("alice"));
  Feed(AliceStartup());
  EXPECT_EQ(session.failed_sqlstate, pgwire::kInvalidAuthorization);
  EXPECT_THAT(session.failed_message,
              HasSubstr("for which this proxy has no credentials"));
  EXPECT_EQ(Event(warden::v1::AUDIT_EVENT_KIND_SESSION_START), nullptr);
}

}  // namespace
}  // namespace warden::dataplane::session
