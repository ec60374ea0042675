// Warden's login to the database, played against a real SCRAM server and
// against a database that tries to downgrade or skip the proof.
#include "dataplane/session/upstream_login.h"

#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "dataplane/auth/scram.h"
#include "dataplane/pgwire/encoder.h"
#include "tests/unit/dataplane/pgwire/bodies.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::dataplane::session {
namespace {

using ::testing::HasSubstr;
using State = UpstreamLogin::Step::State;

constexpr char kPassword[] = "svc-secret-pw";

using pgwire::testing::Body;

std::string Sasl() {
  std::string m;
  pgwire::WriteAuthenticationSasl(&m, {"SCRAM-SHA-256"});
  return Body(m);
}
std::string SaslContinue(absl::string_view data) {
  std::string m;
  pgwire::WriteAuthenticationSaslContinue(&m, data);
  return Body(m);
}
std::string SaslFinal(absl::string_view data) {
  std::string m;
  pgwire::WriteAuthenticationSaslFinal(&m, data);
  return Body(m);
}
std::string Ok() {
  std::string m;
  pgwire::WriteAuthenticationOk(&m);
  return Body(m);
}
std::string Cleartext() {
  std::string m;
  pgwire::WriteAuthenticationCleartextPassword(&m);
  return Body(m);
}
std::string Error(absl::string_view sqlstate) {
  std::string m;
  pgwire::WriteErrorResponse(&m, "FATAL", sqlstate, "no", "", "", 0);
  return Body(m);
}

// The SCRAM data of a SASLInitialResponse ('p': mechanism, int32 length,
// data) or a SASLResponse ('p': data).
std::string ScramData(const std::string& reply, bool initial) {
  std::string body = reply.substr(5);
  if (!initial) return body;
  const size_t nul = body.find('\0');
  return body.substr(nul + 1 + 4);
}

struct UpstreamLoginTest : ::testing::Test {
  UpstreamLoginTest() {
    upstream.auth = config::UpstreamAuthMethod::kScramSha256;
  }
  config::Upstream upstream;
};

TEST_F(UpstreamLoginTest, ScramWithTheServersProofLogsIn) {
  UpstreamLogin login(upstream, "warden_svc", kPassword, "shop");
  auth::ScramServer server(auth::MakeScramVerifier(kPassword, "0123456789abcdef"),
                           "warden_svc", "mock");
  auto step = login.OnMessage('R', Sasl());
  ASSERT_EQ(step.state, State::kContinue);
  auto server_first = server.HandleClientFirst(ScramData(step.reply, true));
  ASSERT_TRUE(server_first.ok()) << server_first.status();
  step = login.OnMessage('R', SaslContinue(*server_first));
  ASSERT_EQ(step.state, State::kContinue);
  auto server_final = server.HandleClientFinal(ScramData(step.reply, false));
  ASSERT_TRUE(server_final.ok()) << server_final.status();
  step = login.OnMessage('R', SaslFinal(*server_final));
  ASSERT_EQ(step.state, State::kContinue);
  EXPECT_TRUE(step.reply.empty());
  // Notices and protocol negotiation on the way are fine.
  EXPECT_EQ(login.OnMessage('N', "").state, State::kContinue);
  EXPECT_EQ(login.OnMessage('R', Ok()).state, State::kDone);
}

TEST_F(UpstreamLoginTest, AServerThatSkipsItsProofIsNotTheDatabase) {
  UpstreamLogin login(upstream, "warden_svc", kPassword, "shop");
  auth::ScramServer server(auth::MakeScramVerifier(kPassword, "0123456789abcdef"),
                           "warden_svc", "mock");
  auto step = login.OnMessage('R', Sasl());
  auto server_first = server.HandleClientFirst(ScramData(step.reply, true));
  ASSERT_TRUE(server_first.ok());
  step = login.OnMessage('R', SaslContinue(*server_first));
  ASSERT_EQ(step.state, State::kContinue);
  step = login.OnMessage('R', Ok());  // no SASLFinal
  EXPECT_EQ(step.state, State::kFailed);
  EXPECT_EQ(step.sqlstate, "08004");
  EXPECT_THAT(step.message, HasSubstr("skipped SCRAM's final server signature"));
  EXPECT_THAT(step.message, HasSubstr("for \"shop\""));
}

TEST_F(UpstreamLoginTest, AWrongServerSignatureIsRefused) {
  UpstreamLogin login(upstream, "warden_svc", kPassword, "shop");
  // A server that does not know the password (another verifier).
  auth::ScramServer impostor(
      auth::MakeScramVerifier("other-password", "0123456789abcdef"),
      "warden_svc", "mock");
  auto step = login.OnMessage('R', Sasl());
  auto server_first = impostor.HandleClientFirst(ScramData(step.reply, true));
  ASSERT_TRUE(server_first.ok());
  step = login.OnMessage('R', SaslContinue(*server_first));
  ASSERT_EQ(step.state, State::kContinue);
  step = login.OnMessage('R', SaslFinal("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="));
  EXPECT_EQ(step.state, State::kFailed);
  EXPECT_THAT(step.message, HasSubstr("SCRAM signature is wrong"));
}

TEST_F(UpstreamLoginTest, ADowngradeGetsNoPassword) {
  UpstreamLogin login(upstream, "warden_svc", kPassword, "shop");
  auto step = login.OnMessage('R', Cleartext());
  EXPECT_EQ(step.state, State::kFailed);
  EXPECT_THAT(step.message, HasSubstr("asked for cleartext password"));
  EXPECT_FALSE(absl::StrContains(step.reply, kPassword));
  // Nor a login without any proof at all.
  UpstreamLogin again(upstream, "warden_svc", kPassword, "shop");
  step = again.OnMessage('R', Ok());
  EXPECT_EQ(step.state, State::kFailed);
  EXPECT_THAT(step.message, HasSubstr("without SCRAM-SHA-256"));
}

TEST_F(UpstreamLoginTest, Md5SendsTheHashNotThePassword) {
  upstream.auth = config::UpstreamAuthMethod::kMd5;
  UpstreamLogin login(upstream, "warden_svc", kPassword, "shop");
  std::string m;
  pgwire::WriteAuthenticationMd5Password(&m, "salt");
  auto step = login.OnMessage('R', Body(m));
  ASSERT_EQ(step.state, State::kContinue);
  EXPECT_THAT(step.reply, HasSubstr("md5"));
  EXPECT_FALSE(absl::StrContains(step.reply, kPassword));
  // md5 configured: SASL is a mismatch too.
  step = login.OnMessage('R', Sasl());
  EXPECT_EQ(step.state, State::kFailed);
}

TEST_F(UpstreamLoginTest, TheDatabasesErrorsKeepTheirSqlstate) {
  UpstreamLogin login(upstream, "warden_svc", kPassword, "shop");
  auto step = login.OnMessage('E', Error("28P01"));
  EXPECT_EQ(step.state, State::kFailed);
  EXPECT_EQ(step.sqlstate, "08004");
  EXPECT_THAT(step.message, HasSubstr("rejected the service credentials"));
  step = login.OnMessage('E', Error("53300"));
  EXPECT_EQ(step.sqlstate, "53300");
  EXPECT_THAT(step.message, HasSubstr("upstream database: no"));
  step = login.OnMessage('Z', "I");
  EXPECT_EQ(step.state, State::kFailed);
  EXPECT_EQ(step.sqlstate, "08006");
  EXPECT_THAT(step.message, HasSubstr("upstream sent 'Z' during authentication"));
}

}  // namespace
}  // namespace warden::dataplane::session
