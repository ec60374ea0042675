#include "dataplane/session/local_authenticator.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "dataplane/auth/scram.h"
#include "dataplane/config/config.h"
#include "dataplane/pgwire/framing.h"
#include "dataplane/pgwire/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/dataplane/pgwire/pgwire_test_util.h"

namespace warden::dataplane::session {
namespace {

using pgwire::testing::Cs;
using pgwire::testing::I32;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using State = AuthStep::State;

constexpr absl::string_view kConfig = R"(listeners:
  - name: main
    environment: prod
environments:
  - name: prod
    databases:
      - name: app
        upstream: {database: appdb, user: warden, password: svc-pw}
  - name: staging
    databases:
      - name: app
        upstream: {database: appdb, user: warden, password: svc-pw}
users:
  - name: alice
    password: alice-pw
    groups: [dba]
    kind: agent
    environments: [prod]
  - name: bob
    password: bob-pw
)";

constexpr absl::string_view kMockSecret = "local-authenticator-test-secret";
constexpr absl::string_view kClientNonce = "fyko+d2lbbFgONRv9qkxdawL";

// One backend Authentication message, decoded.
struct AuthMessage {
  int32_t code = -1;
  std::string data;
};

// Decodes `reply`, which must hold exactly one Authentication ('R') message.
AuthMessage ParseSingleAuth(absl::string_view reply) {
  AuthMessage out;
  const pgwire::Frame frame = pgwire::NextMessage(reply, 1 << 20);
  if (frame.status != pgwire::FrameStatus::kMessage) {
    ADD_FAILURE() << "reply is not one complete message: " << frame.error;
    return out;
  }
  EXPECT_EQ(frame.type, 'R');
  EXPECT_EQ(frame.size, reply.size()) << "reply holds more than one message";
  auto auth = pgwire::ParseAuthentication(frame.body);
  if (!auth.ok()) {
    ADD_FAILURE() << auth.status();
    return out;
  }
  out.code = auth->code;
  out.data = std::string(auth->data);
  return out;
}

// The SASLInitialResponse body as the session receives it.
std::string SaslInitial(absl::string_view mechanism, absl::string_view data) {
  return Cs(mechanism) + I32(static_cast<int64_t>(data.size())) +
         std::string(data);
}

AuthRequest Request(std::string user, std::string environment = "prod",
                    bool tls = false) {
  AuthRequest r;
  r.user = std::move(user);
  r.database = "app";
  r.environment = std::move(environment);
  r.tls = tls;
  return r;
}

// The value of attribute `key` ("s", "i", "r") in a SCRAM message.
std::string ScramAttr(absl::string_view message, char key) {
  for (absl::string_view part : absl::StrSplit(message, ',')) {
    if (part.size() >= 2 && part[0] == key && part[1] == '=') {
      return std::string(part.substr(2));
    }
  }
  return "";
}

class LocalAuthenticatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto parsed = config::ParseConfig(kConfig, "proxy.yaml", "");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    config_ = new config::ProxyConfig(std::move(*parsed));
  }
  static void TearDownTestSuite() {
    delete config_;
    config_ = nullptr;
  }

  // Runs the SASL exchange up to the server-first message. Returns the
  // server-first data, or "" on failure (the test has failed then).
  static std::string ToServerFirst(AuthExchange& exchange,
                                   auth::ScramClient& client) {
    const AuthStep start = exchange.Start();
    EXPECT_EQ(start.state, State::kContinue);
    const AuthMessage sasl = ParseSingleAuth(start.reply);
    EXPECT_EQ(sasl.code, pgwire::kAuthSasl);
    const AuthStep cont = exchange.OnMessage(
        SaslInitial("SCRAM-SHA-256", client.ClientFirstMessage()));
    EXPECT_EQ(cont.state, State::kContinue) << cont.error;
    if (cont.state != State::kContinue) return "";
    const AuthMessage server_first = ParseSingleAuth(cont.reply);
    EXPECT_EQ(server_first.code, pgwire::kAuthSaslContinue);
    return server_first.data;
  }

  // A full SCRAM exchange; returns the verdict for the client-final message.
  static AuthStep RunScram(Authenticator& authenticator,
                           const AuthRequest& request,
                           auth::ScramClient& client) {
    auto exchange = authenticator.Begin(request);
    const std::string server_first = ToServerFirst(*exchange, client);
    auto client_final = client.HandleServerFirst(server_first);
    EXPECT_TRUE(client_final.ok()) << client_final.status();
    if (!client_final.ok()) return AuthStep{};
    return exchange->OnMessage(*client_final);
  }

  static config::ProxyConfig* config_;
};

config::ProxyConfig* LocalAuthenticatorTest::config_ = nullptr;

// --------------------------------------------------------------------- SCRAM

TEST_F(LocalAuthenticatorTest, ScramSuccess) {
  LocalAuthenticator authenticator(config_,
                                   config::ClientAuthMethod::kScramSha256,
                                   std::string(kMockSecret));
  auto exchange = authenticator.Begin(Request("alice"));
  auth::ScramClient client("alice-pw", std::string(kClientNonce));

  // AuthenticationSASL offering only SCRAM-SHA-256.
  const AuthStep start = exchange->Start();
  EXPECT_EQ(start.state, State::kContinue);
  const AuthMessage sasl = ParseSingleAuth(start.reply);
  ASSERT_EQ(sasl.code, pgwire::kAuthSasl);
  auto mechanisms = pgwire::ParseSaslMechanisms(sasl.data);
  ASSERT_TRUE(mechanisms.ok()) << mechanisms.status();
  EXPECT_THAT(*mechanisms, ElementsAre("SCRAM-SHA-256"));

  // SASLInitialResponse -> AuthenticationSASLContinue(server-first).
  const AuthStep cont = exchange->OnMessage(
      SaslInitial("SCRAM-SHA-256", client.ClientFirstMessage()));
  ASSERT_EQ(cont.state, State::kContinue) << cont.error;
  const AuthMessage server_first = ParseSingleAuth(cont.reply);
  ASSERT_EQ(server_first.code, pgwire::kAuthSaslContinue);
  EXPECT_THAT(server_first.data, StartsWith(absl::StrCat("r=", kClientNonce)));
  EXPECT_EQ(ScramAttr(server_first.data, 'i'), "4096");

  // SASLResponse(client-final) -> success with SASLFinal.
  auto client_final = client.HandleServerFirst(server_first.data);
  ASSERT_TRUE(client_final.ok()) << client_final.status();
  const AuthStep done = exchange->OnMessage(*client_final);
  ASSERT_EQ(done.state, State::kSuccess) << done.error;
  EXPECT_EQ(done.identity.user(), "alice");
  EXPECT_THAT(done.identity.groups(), ElementsAre("dba"));
  EXPECT_EQ(done.identity.kind(), warden::v1::IDENTITY_KIND_AGENT);
  EXPECT_EQ(done.identity.auth_method(), "scram-sha-256");

  // Only SASLFinal: the session sends AuthenticationOk itself.
  const AuthMessage server_final = ParseSingleAuth(done.reply);
  ASSERT_EQ(server_final.code, pgwire::kAuthSaslFinal);
  EXPECT_THAT(server_final.data, StartsWith("v="));
  EXPECT_TRUE(client.VerifyServerFinal(server_final.data).ok());
}

TEST_F(LocalAuthenticatorTest, ScramSuccessForUserWithoutEnvironmentLimits) {
  LocalAuthenticator authenticator(config_,
                                   config::ClientAuthMethod::kScramSha256,
                                   std::string(kMockSecret));
  auth::ScramClient client("bob-pw");
  const AuthStep done =
      RunScram(authenticator, Request("bob", "staging"), client);
  ASSERT_EQ(done.state, State::kSuccess) << done.error;
  EXPECT_EQ(done.identity.user(), "bob");
  EXPECT_THAT(done.identity.groups(), IsEmpty());
  EXPECT_EQ(done.identity.kind(), warden::v1::IDENTITY_KIND_HUMAN);
  const AuthMessage server_final = ParseSingleAuth(done.reply);
  ASSERT_EQ(server_final.code, pgwire::kAuthSaslFinal);
  EXPECT_TRUE(client.VerifyServerFinal(server_final.data).ok());
}

TEST_F(LocalAuthenticatorTest, ScramWrongPassword) {
  LocalAuthenticator authenticator(config_,
                                   config::ClientAuthMethod::kScramSha256,
                                   std::string(kMockSecret));
  auth::ScramClient client("not-alice-pw");
  const AuthStep done = RunScram(authenticator, Request("alice"), client);
  EXPECT_EQ(done.state, State::kFailure);
  EXPECT_EQ(done.client_sqlstate, "28P01");
  EXPECT_EQ(done.client_error,
            "password authentication failed for user \"alice\"");
  EXPECT_TRUE(absl::IsPermissionDenied(done.error)) << done.error;
  EXPECT_THAT(done.reply, IsEmpty());
  EXPECT_EQ(done.identity.user(), "");
}

TEST_F(LocalAuthenticatorTest, ScramAnotherUsersPasswordFails) {
  LocalAuthenticator authenticator(config_,
                                   config::ClientAuthMethod::kScramSha256,
                                   std::string(kMockSecret));
  auth::ScramClient client("bob-pw");
  const AuthStep done = RunScram(authenticator, Request("alice"), client);
  EXPECT_EQ(done.state, State::kFailure);
  EXPECT_EQ(done.client_sqlstate, "28P01");
}

TEST_F(LocalAuthenticatorTest, ScramUnknownUserLooksLikeWrongPassword) {
  LocalAuthenticator authenticator(config_,
                                   config::ClientAuthMethod::kScramSha256,
                                   std::string(kMockSecret));
  auth::ScramClient client("anything", std::string(kClientNonce));
  auto exchange = authenticator.Begin(Request("mallory"));
  // The mock exchange looks like a real one up to the final verdict.
  const std::string server_first = ToServerFirst(*exchange, client);
  EXPECT_THAT(server_first, StartsWith(absl::StrCat("r=", kClientNonce)));
  EXPECT_NE(ScramAttr(server_first, 's'), "");
  EXPECT_EQ(ScramAttr(server_first, 'i'), "4096");
  auto client_final = client.HandleServerFirst(server_first);
  ASSERT_TRUE(client_final.ok()) << client_final.status();
  const AuthStep done = exchange->OnMessage(*client_final);
  EXPECT_EQ(done.state, State::kFailure);
  EXPECT_EQ(done.client_sqlstate, "28P01");
  EXPECT_EQ(done.client_error,
            "password authentication failed for user \"mallory\"");
  EXPECT_THAT(done.reply, IsEmpty());
}

TEST_F(LocalAuthenticatorTest, SaltsAreStablePerUserSoUnknownUsersHide) {
  LocalAuthenticator authenticator(config_,
                                   config::ClientAuthMethod::kScramSha256,
                                   std::string(kMockSecret));
  auto salt_for = [&](LocalAuthenticator& a, const std::string& user) {
    auth::ScramClient client("x");
    auto exchange = a.Begin(Request(user));
    return ScramAttr(ToServerFirst(*exchange, client), 's');
  };
  // A real user's salt is the verifier's.
  auto alice_verifier =
      auth::ParseScramVerifier(config_->FindUser("alice")->scram_verifier);
  ASSERT_TRUE(alice_verifier.ok());
  const std::string alice_salt = salt_for(authenticator, "alice");
  EXPECT_EQ(alice_salt, absl::Base64Escape(alice_verifier->salt));
  EXPECT_EQ(alice_salt, salt_for(authenticator, "alice"));

  // An unknown user's salt is just as stable, differs between users and
  // depends on the mock secret.
  const std::string mallory_salt = salt_for(authenticator, "mallory");
  EXPECT_NE(mallory_salt, "");
  EXPECT_EQ(mallory_salt, salt_for(authenticator, "mallory"));
  EXPECT_NE(mallory_salt, salt_for(authenticator, "trudy"));
  EXPECT_NE(mallory_salt, alice_salt);
  LocalAuthenticator other(config_, config::ClientAuthMethod::kScramSha256,
                           "another-secret");
  EXPECT_NE(mallory_salt, salt_for(other, "mallory"));
}

TEST_F(LocalAuthenticatorTest, ScramEnvironmentNotAllowed) {
  LocalAuthenticator authenticator(config_,
                                   config::ClientAuthMethod::kScramSha256,
                                   std::string(kMockSecret));
  auth::ScramClient client("alice-pw");
  const AuthStep done =
      RunScram(authenticator, Request("alice", "staging"), client);
  EXPECT_EQ(done.state, State::kFailure);
  EXPECT_EQ(done.client_sqlstate, "28000");
  EXPECT_EQ(done.client_error,
            "user \"alice\" is not allowed in environment \"staging\"");
  EXPECT_TRUE(absl::IsPermissionDenied(done.error)) << done.error;
  EXPECT_THAT(done.reply, IsEmpty());
}

TEST_F(LocalAuthenticatorTest, ScramWrongMechanismIsProtocolViolation) {
  LocalAuthenticator authenticator(config_,
                                   config::ClientAuthMethod::kScramSha256,
                                   std::string(kMockSecret));
  auth::ScramClient client("alice-pw");
  auto exchange = authenticator.Begin(Request("alice"));
  exchange->Start();
  const AuthStep step = exchange->OnMessage(
      SaslInitial("SCRAM-SHA-256-PLUS", client.ClientFirstMessage()));
  EXPECT_EQ(step.state, State::kFailure);
  EXPECT_EQ(step.client_sqlstate, "08P01");
  EXPECT_THAT(step.client_error, StartsWith("malformed SCRAM message: "));
  EXPECT_TRUE(absl::IsInvalidArgument(step.error)) << step.error;
  EXPECT_THAT(step.reply, IsEmpty());
}

TEST_F(LocalAuthenticatorTest, ScramMalformedInitialResponses) {
  LocalAuthenticator authenticator(config_,
                                   config::ClientAuthMethod::kScramSha256,
                                   std::string(kMockSecret));
  const std::vector<std::string> bodies = {
      // No NUL after the mechanism name.
      "SCRAM-SHA-256",
      // Data length -1 (no initial response).
      Cs("SCRAM-SHA-256") + I32(-1),
      // Declared length longer than the data.
      Cs("SCRAM-SHA-256") + I32(100) + "n,,n=,r=abc",
      // Trailing bytes after the data.
      SaslInitial("SCRAM-SHA-256", "n,,n=,r=abc") + "x",
      // Channel binding requested although it is not offered.
      SaslInitial("SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc"),
      // Not SCRAM at all.
      SaslInitial("SCRAM-SHA-256", "hello"),
  };
  for (const std::string& body : bodies) {
    auto exchange = authenticator.Begin(Request("alice"));
    exchange->Start();
    const AuthStep step = exchange->OnMessage(body);
    EXPECT_EQ(step.state, State::kFailure) << absl::CEscape(body);
    EXPECT_EQ(step.client_sqlstate, "08P01") << absl::CEscape(body);
    EXPECT_FALSE(step.error.ok()) << absl::CEscape(body);
  }
}

TEST_F(LocalAuthenticatorTest, ScramTamperedClientFinalIsRejected) {
  LocalAuthenticator authenticator(config_,
                                   config::ClientAuthMethod::kScramSha256,
                                   std::string(kMockSecret));
  auth::ScramClient client("alice-pw");
  auto exchange = authenticator.Begin(Request("alice"));
  const std::string server_first = ToServerFirst(*exchange, client);
  auto client_final = client.HandleServerFirst(server_first);
  ASSERT_TRUE(client_final.ok()) << client_final.status();
  // Replace the combined nonce: no longer the one the server chose.
  std::string tampered = *client_final;
  const size_t r = tampered.find(",r=");
  ASSERT_NE(r, std::string::npos);
  tampered.insert(r + 3, "X");
  const AuthStep step = exchange->OnMessage(tampered);
  EXPECT_EQ(step.state, State::kFailure);
  EXPECT_EQ(step.client_sqlstate, "08P01");
  EXPECT_TRUE(absl::IsInvalidArgument(step.error)) << step.error;
  EXPECT_THAT(step.reply, IsEmpty());
  EXPECT_EQ(step.identity.user(), "");
}

// ----------------------------------------------------------------- cleartext

TEST_F(LocalAuthenticatorTest, CleartextRefusedWithoutTls) {
  LocalAuthenticator authenticator(config_, config::ClientAuthMethod::kPassword,
                                   std::string(kMockSecret));
  auto exchange = authenticator.Begin(Request("alice", "prod", /*tls=*/false));
  const AuthStep start = exchange->Start();
  EXPECT_EQ(start.state, State::kFailure);
  EXPECT_EQ(start.client_sqlstate, "28P01");
  EXPECT_EQ(start.client_error,
            "password authentication failed for user \"alice\"");
  EXPECT_FALSE(start.error.ok());
  EXPECT_THAT(start.reply, IsEmpty());
  // The refused exchange stays refused even with the right password.
  EXPECT_EQ(exchange->OnMessage(Cs("alice-pw")).state, State::kFailure);
}

TEST_F(LocalAuthenticatorTest, CleartextAllowsOneGuessPerExchange) {
  LocalAuthenticator authenticator(config_, config::ClientAuthMethod::kPassword,
                                   std::string(kMockSecret));
  auto exchange = authenticator.Begin(Request("alice", "prod", /*tls=*/true));
  exchange->Start();
  EXPECT_EQ(exchange->OnMessage(Cs("wrong")).state, State::kFailure);
  EXPECT_EQ(exchange->OnMessage(Cs("alice-pw")).state, State::kFailure);
}

TEST_F(LocalAuthenticatorTest, CleartextSuccessOverTls) {
  LocalAuthenticator authenticator(config_, config::ClientAuthMethod::kPassword,
                                   std::string(kMockSecret));
  auto exchange = authenticator.Begin(Request("alice", "prod", /*tls=*/true));
  const AuthStep start = exchange->Start();
  EXPECT_EQ(start.state, State::kContinue) << start.error;
  const AuthMessage ask = ParseSingleAuth(start.reply);
  EXPECT_EQ(ask.code, pgwire::kAuthCleartextPassword);
  EXPECT_THAT(ask.data, IsEmpty());

  const AuthStep done = exchange->OnMessage(Cs("alice-pw"));
  ASSERT_EQ(done.state, State::kSuccess) << done.error;
  EXPECT_EQ(done.identity.user(), "alice");
  EXPECT_THAT(done.identity.groups(), ElementsAre("dba"));
  EXPECT_EQ(done.identity.kind(), warden::v1::IDENTITY_KIND_AGENT);
  EXPECT_EQ(done.identity.auth_method(), "password");
  EXPECT_THAT(done.reply, IsEmpty());
}

TEST_F(LocalAuthenticatorTest, CleartextWrongPassword) {
  LocalAuthenticator authenticator(config_, config::ClientAuthMethod::kPassword,
                                   std::string(kMockSecret));
  for (const std::string& body :
       {Cs("wrong"), Cs("alice-pw "), Cs(""), Cs("bob-pw")}) {
    auto exchange = authenticator.Begin(Request("alice", "prod", true));
    exchange->Start();
    const AuthStep done = exchange->OnMessage(body);
    EXPECT_EQ(done.state, State::kFailure) << absl::CEscape(body);
    EXPECT_EQ(done.client_sqlstate, "28P01");
    EXPECT_EQ(done.client_error,
              "password authentication failed for user \"alice\"");
    EXPECT_EQ(done.identity.user(), "");
  }
}

TEST_F(LocalAuthenticatorTest, CleartextMalformedMessage) {
  LocalAuthenticator authenticator(config_, config::ClientAuthMethod::kPassword,
                                   std::string(kMockSecret));
  for (const std::string& body :
       {std::string("alice-pw"), Cs("alice-pw") + "trailing"}) {
    auto exchange = authenticator.Begin(Request("alice", "prod", true));
    exchange->Start();
    const AuthStep done = exchange->OnMessage(body);
    EXPECT_EQ(done.state, State::kFailure) << absl::CEscape(body);
    EXPECT_FALSE(done.error.ok());
  }
}

TEST_F(LocalAuthenticatorTest, CleartextUnknownUser) {
  LocalAuthenticator authenticator(config_, config::ClientAuthMethod::kPassword,
                                   std::string(kMockSecret));
  auto exchange = authenticator.Begin(Request("mallory", "prod", true));
  const AuthStep start = exchange->Start();
  EXPECT_EQ(start.state, State::kContinue);
  const AuthStep done = exchange->OnMessage(Cs("alice-pw"));
  EXPECT_EQ(done.state, State::kFailure);
  EXPECT_EQ(done.client_sqlstate, "28P01");
  EXPECT_EQ(done.client_error,
            "password authentication failed for user \"mallory\"");
}

TEST_F(LocalAuthenticatorTest, CleartextEnvironmentNotAllowed) {
  LocalAuthenticator authenticator(config_, config::ClientAuthMethod::kPassword,
                                   std::string(kMockSecret));
  auto exchange = authenticator.Begin(Request("alice", "staging", true));
  exchange->Start();
  const AuthStep done = exchange->OnMessage(Cs("alice-pw"));
  EXPECT_EQ(done.state, State::kFailure);
  EXPECT_EQ(done.client_sqlstate, "28000");
  EXPECT_EQ(done.client_error,
            "user \"alice\" is not allowed in environment \"staging\"");
}

}  // namespace
}  // namespace warden::dataplane::session
