#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "dataplane/auth/scram.h"
#include "common/crypto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::dataplane::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// RFC 7677 section 3 test vector.
constexpr absl::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr absl::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr absl::string_view kRfcSaltB64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr absl::string_view kRfcClientFirst =
    "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr absl::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr absl::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr absl::string_view kRfcServerFinal =
    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
constexpr absl::string_view kMockSecret = "0123456789abcdef-test-mock-secret";

std::string RfcSalt() {
  std::string salt;
  EXPECT_TRUE(absl::Base64Unescape(kRfcSaltB64, &salt));
  return salt;
}

ScramVerifier RfcVerifier() { return MakeScramVerifier("pencil", RfcSalt()); }

// Server that has answered the RFC client-first-message.
std::unique_ptr<ScramServer> RfcServerAfterFirst() {
  auto server = std::make_unique<ScramServer>(RfcVerifier(), "user", "");
  server->set_nonce_for_testing(std::string(kRfcServerNonce));
  EXPECT_EQ(server->HandleClientFirst(kRfcClientFirst).value_or(""),
            kRfcServerFirst);
  return server;
}

// ---------------------------------------------------------------------------
// Verifier

TEST(ScramVerifierTest, KnownAnswerMatchesRfcExchange) {
  // Computed with Python hashlib (pbkdf2_hmac / hmac / sha256) from
  // password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
  ScramVerifier v = RfcVerifier();
  EXPECT_EQ(v.iterations, 4096);
  EXPECT_EQ(FormatScramVerifier(v),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
            "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
            "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
}

TEST(ScramVerifierTest, FormatParseRoundTrip) {
  absl::StatusOr<ScramVerifier> v = MakeScramVerifierRandomSalt("s3cret", 4096);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->salt.size(), 16u);
  const std::string text = FormatScramVerifier(*v);
  EXPECT_THAT(text, StartsWith("SCRAM-SHA-256$4096:"));
  absl::StatusOr<ScramVerifier> parsed = ParseScramVerifier(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->iterations, v->iterations);
  EXPECT_EQ(parsed->salt, v->salt);
  EXPECT_EQ(parsed->stored_key, v->stored_key);
  EXPECT_EQ(parsed->server_key, v->server_key);
  EXPECT_EQ(FormatScramVerifier(*parsed), text);
}

TEST(ScramVerifierTest, RandomSaltsDiffer) {
  absl::StatusOr<ScramVerifier> a = MakeScramVerifierRandomSalt("pw", 1);
  absl::StatusOr<ScramVerifier> b = MakeScramVerifierRandomSalt("pw", 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->salt, b->salt);
  EXPECT_NE(a->stored_key, b->stored_key);
}

TEST(ScramVerifierTest, RandomSaltRejectsBadIterations) {
  EXPECT_EQ(MakeScramVerifierRandomSalt("pw", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeScramVerifierRandomSalt("pw", 10'000'001).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ScramVerifierTest, ParseErrorsArePrecise) {
  const std::string good = FormatScramVerifier(RfcVerifier());
  const std::string keys = good.substr(good.find('$', 14));  // "$Stored:Srv"
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"", "prefix"},
      {"md5abcdef", "prefix"},
      {"SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==" + keys, "prefix"},
      {"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==", "StoredKey"},
      {"SCRAM-SHA-256$4096" + keys, "<iterations>:<salt>"},
      {"SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==" + keys, "iterations"},
      {"SCRAM-SHA-256$-1:W22ZaJ0SNY7soEsUEjb6gQ==" + keys, "iterations"},
      {"SCRAM-SHA-256$ 4096:W22ZaJ0SNY7soEsUEjb6gQ==" + keys, "iterations"},
      {"SCRAM-SHA-256$abc:W22ZaJ0SNY7soEsUEjb6gQ==" + keys, "iterations"},
      {"SCRAM-SHA-256$4096:" + keys, "salt"},
      {"SCRAM-SHA-256$4096:!!!!" + keys, "salt"},
      {"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:" +
           good.substr(good.rfind(':') + 1),
       "StoredKey"},
      {good.substr(0, good.rfind(':') + 1) + "AAAA", "ServerKey"},
      {good.substr(0, good.rfind(':') + 1), "ServerKey"},
      {good + "$x", "expected"},
      {good + ":x", "<StoredKey>:<ServerKey>"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ScramVerifier> v = ParseScramVerifier(c.text);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(v.status().message()), HasSubstr(c.message))
        << c.text;
  }
  EXPECT_TRUE(ParseScramVerifier(good).ok());
}

// ---------------------------------------------------------------------------
// RFC 7677 known-answer exchange

TEST(ScramRfcVectorTest, ServerSideReproducesRfcMessages) {
  std::unique_ptr<ScramServer> server = RfcServerAfterFirst();
  absl::StatusOr<std::string> final_msg =
      server->HandleClientFinal(kRfcClientFinal);
  ASSERT_TRUE(final_msg.ok()) << final_msg.status();
  EXPECT_EQ(*final_msg, kRfcServerFinal);
}

TEST(ScramRfcVectorTest, ClientSideReproducesRfcMessages) {
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  EXPECT_EQ(client.ClientFirstMessage(), kRfcClientFirst);
  absl::StatusOr<std::string> final_msg =
      client.HandleServerFirst(kRfcServerFirst);
  ASSERT_TRUE(final_msg.ok()) << final_msg.status();
  EXPECT_EQ(*final_msg, kRfcClientFinal);
  EXPECT_TRUE(client.VerifyServerFinal(kRfcServerFinal).ok());
}

TEST(ScramRfcVectorTest, ClientRejectsWrongServerSignature) {
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  ASSERT_TRUE(client.HandleServerFirst(kRfcServerFirst).ok());
  // Correct length, first byte changed. (Not the last base64 character: its
  // low bits are padding, which the decoder ignores.)
  EXPECT_EQ(
      client.VerifyServerFinal("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
          .code(),
      absl::StatusCode::kPermissionDenied);
}

TEST(ScramRfcVectorTest, ServerRejectsTamperedProof) {
  std::unique_ptr<ScramServer> server = RfcServerAfterFirst();
  std::string tampered(kRfcClientFinal);
  tampered[tampered.find("p=") + 2] = 'e';  // "p=dHzb..." -> "p=eHzb..."
  absl::StatusOr<std::string> r = server->HandleClientFinal(tampered);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(), "password authentication failed");
}

// ---------------------------------------------------------------------------
// Client <-> server

absl::Status RunExchange(ScramClient& client, ScramServer& server) {
  absl::StatusOr<std::string> server_first =
      server.HandleClientFirst(client.ClientFirstMessage());
  if (!server_first.ok()) return server_first.status();
  absl::StatusOr<std::string> client_final =
      client.HandleServerFirst(*server_first);
  if (!client_final.ok()) return client_final.status();
  absl::StatusOr<std::string> server_final =
      server.HandleClientFinal(*client_final);
  if (!server_final.ok()) return server_final.status();
  return client.VerifyServerFinal(*server_final);
}

TEST(ScramExchangeTest, RightPasswordSucceeds) {
  ScramVerifier v = MakeScramVerifier("correct horse", "saltsaltsalt", 64);
  ScramServer server(v, "alice", kMockSecret);
  ScramClient client("correct horse");
  EXPECT_THAT(client.ClientFirstMessage(), StartsWith("n,,n=,r="));
  EXPECT_TRUE(RunExchange(client, server).ok());
}

TEST(ScramExchangeTest, RepeatedLoginsDeriveTheSaltedPasswordOnce) {
  ScramVerifier v = MakeScramVerifier("cache me", "salt-for-cache", 64);
  const uint64_t before = SaltedPasswordCacheHits();
  for (int i = 0; i < 3; ++i) {
    ScramServer server(v, "svc", kMockSecret);
    ScramClient client("cache me");
    ASSERT_TRUE(RunExchange(client, server).ok());
  }
  EXPECT_EQ(SaltedPasswordCacheHits() - before, 2u);
  // What it remembers is per password, salt and iteration count: another
  // password under the same salt is derived (and still refused).
  ScramServer server(v, "svc", kMockSecret);
  ScramClient wrong("cache me not");
  EXPECT_EQ(RunExchange(wrong, server).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(SaltedPassword("cache me", "salt-for-cache", 64),
            crypto::Pbkdf2HmacSha256("cache me", "salt-for-cache", 64));
  EXPECT_NE(SaltedPassword("cache me", "salt-for-cache", 65),
            SaltedPassword("cache me", "salt-for-cache", 64));
}

TEST(ScramExchangeTest, RandomNoncesDiffer) {
  ScramClient a("pw");
  ScramClient b("pw");
  EXPECT_NE(a.ClientFirstMessage(), b.ClientFirstMessage());
  // 18 bytes -> 24 base64 characters.
  EXPECT_EQ(a.ClientFirstMessage().size(), std::string("n,,n=,r=").size() + 24);
}

TEST(ScramExchangeTest, WrongPasswordIsPermissionDenied) {
  ScramVerifier v = MakeScramVerifier("correct horse", "saltsaltsalt", 64);
  ScramServer server(v, "alice", kMockSecret);
  ScramClient client("battery staple");
  absl::Status s = RunExchange(client, server);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "password authentication failed");
}

TEST(ScramExchangeTest, ClientDetectsImpostorServer) {
  // Impostor knows salt/iterations but not the password: it can only make up
  // a ServerSignature.
  ScramClient client("pw");
  const std::string first = client.ClientFirstMessage();
  const std::string nonce = first.substr(first.find("r=") + 2);
  ASSERT_TRUE(
      client.HandleServerFirst("r=" + nonce + "xyz,s=c2FsdA==,i=16").ok());
  EXPECT_EQ(client.VerifyServerFinal("v=" + std::string(43, 'A') + "=").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(ScramExchangeTest, YFlagAccepted) {
  ScramServer server(RfcVerifier(), "user", kMockSecret);
  server.set_nonce_for_testing("srv");
  ASSERT_EQ(server.HandleClientFirst("y,,n=,r=abc").value_or(""),
            "r=abcsrv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  // With "y,," the channel binding data must be base64("y,,") = "eSws"; a
  // "biws" here would be a downgrade mismatch.
  absl::StatusOr<std::string> r = server.HandleClientFinal(
      "c=biws,r=abcsrv,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ScramExchangeTest, ServerAcceptsYFlagWithMatchingBinding) {
  // c=eSws matches "y,,": the message parses and reaches the proof check (the
  // RFC proof is for a different AuthMessage, so PermissionDenied).
  ScramServer server(RfcVerifier(), "user", kMockSecret);
  server.set_nonce_for_testing("srv");
  ASSERT_TRUE(server.HandleClientFirst("y,,n=,r=abc").ok());
  absl::StatusOr<std::string> r = server.HandleClientFinal(
      "c=eSws,r=abcsrv,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(ScramExchangeTest, ServerIgnoresScramUsername) {
  // libpq sends "n=" empty; any username must work the same.
  ScramVerifier v = MakeScramVerifier("pw", "salty", 32);
  ScramServer server(v, "bob", kMockSecret);
  ScramClient client("pw", "clientnonce", "someone,else=x");
  EXPECT_EQ(client.ClientFirstMessage(),
            "n,,n=someone=2Celse=3Dx,r=clientnonce");
  EXPECT_TRUE(RunExchange(client, server).ok());
}

// ---------------------------------------------------------------------------
// Mock exchange for unknown users

std::string MockServerFirst(absl::string_view user, absl::string_view secret) {
  ScramServer server(std::nullopt, user, secret);
  server.set_nonce_for_testing("srv");
  return server.HandleClientFirst("n,,n=,r=abc").value_or("error");
}

TEST(ScramMockTest, UnknownUserIsPermissionDenied) {
  ScramServer server(std::nullopt, "nobody", kMockSecret);
  ScramClient client("whatever");
  absl::Status s = RunExchange(client, server);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "password authentication failed");
}

TEST(ScramMockTest, UnknownUserFailsEvenWithEmptyPassword) {
  ScramServer server(std::nullopt, "nobody", "");
  ScramClient client("");
  EXPECT_EQ(RunExchange(client, server).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(ScramMockTest, ServerFirstLooksNormalAndIsStable) {
  const std::string a = MockServerFirst("nobody", kMockSecret);
  const std::string b = MockServerFirst("nobody", kMockSecret);
  EXPECT_EQ(a, b);
  std::vector<std::string> parts = absl::StrSplit(a, ',');
  ASSERT_EQ(parts.size(), 3u) << a;
  EXPECT_EQ(parts[0], "r=abcsrv");
  EXPECT_EQ(parts[2], "i=4096");
  ASSERT_THAT(parts[1], StartsWith("s="));
  std::string salt;
  ASSERT_TRUE(absl::Base64Unescape(parts[1].substr(2), &salt));
  EXPECT_EQ(salt.size(), 16u);  // Same as MakeScramVerifierRandomSalt.

  // Different user or different secret => different salt.
  EXPECT_NE(MockServerFirst("nobody2", kMockSecret), a);
  EXPECT_NE(MockServerFirst("nobody", "other secret"), a);
  // Empty secret: per-process secret, still stable within the process.
  EXPECT_EQ(MockServerFirst("nobody", ""), MockServerFirst("nobody", ""));
  EXPECT_NE(MockServerFirst("nobody", ""), a);
}

TEST(ScramMockTest, MalformedFinalStillInvalidArgument) {
  ScramServer server(std::nullopt, "nobody", kMockSecret);
  server.set_nonce_for_testing("srv");
  ASSERT_TRUE(server.HandleClientFirst("n,,n=,r=abc").ok());
  EXPECT_EQ(server.HandleClientFinal("c=biws,r=WRONG,p=AAAA").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Malformed messages

TEST(ScramServerMalformedTest, ClientFirstRejected) {
  const char* const cases[] = {
      "",
      "n",
      "n,",
      "x,,n=,r=abc",                       // bad cbind flag
      "p=tls-server-end-point,,n=,r=abc",  // channel binding requested
      "n,a=admin,n=,r=abc",                // authzid
      "n,x,n=,r=abc",                      // garbage authzid
      "n,,m=ext,n=,r=abc",                 // mandatory extension
      "n,,r=abc",                          // missing n=
      "n,,n=",                             // missing r=
      "n,,n=,",                            // missing r=
      "n,,n=,x=abc",                       // missing r=
      "n,,n=,r=",                          // empty nonce
      "n,,n=,r=ab\x01"
      "c",                    // non-printable nonce
      "n,,n=,r=ab c",         // space in nonce
      "n,,n=,r=ab\x7f",       // DEL in nonce
      "n,,n=,r=abc,garbage",  // trailing garbage
      "n,,n=,r=abc,",         // trailing empty attribute
  };
  for (const char* c : cases) {
    ScramServer server(RfcVerifier(), "user", kMockSecret);
    EXPECT_EQ(server.HandleClientFirst(c).status().code(),
              absl::StatusCode::kInvalidArgument)
        << c;
    // Exchange is over after an error.
    EXPECT_EQ(server.HandleClientFirst("n,,n=,r=abc").status().code(),
              absl::StatusCode::kFailedPrecondition)
        << c;
  }
}

TEST(ScramServerMalformedTest, ClientFirstExtensionsAccepted) {
  ScramServer server(RfcVerifier(), "user", kMockSecret);
  EXPECT_TRUE(server.HandleClientFirst("n,,n=,r=abc,x=ext").ok());
}

TEST(ScramServerMalformedTest, ChannelBindingErrorMentionsIt) {
  ScramServer server(RfcVerifier(), "user", kMockSecret);
  absl::StatusOr<std::string> r =
      server.HandleClientFirst("p=tls-server-end-point,,n=,r=abc");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("channel binding"));
}

TEST(ScramServerMalformedTest, ClientFinalRejected) {
  const std::string nonce =
      "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const std::string cases[] = {
      "",
      "r=" + nonce + "," + proof,         // missing c=
      "c=eSws,r=" + nonce + "," + proof,  // cbind mismatch (y,,)
      "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=" + nonce + "," + proof,
      "c=biws," + proof,                           // missing r=
      "c=biws,r=" + nonce + "X," + proof,          // nonce mismatch
      "c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof,    // client nonce only
      "c=biws,r=" + nonce,                         // missing p=
      "c=biws,r=" + nonce + ",",                   // empty last attribute
      "c=biws,r=" + nonce + "," + proof + ",x=1",  // p= not last
      "c=biws,r=" + nonce + ",garbage," + proof,   // garbage
      "c=biws,r=" + nonce + ",p=",                 // empty proof
      "c=biws,r=" + nonce + ",p=!!!!",             // bad base64
      "c=biws,r=" + nonce + ",p=AAAA",             // short proof
  };
  for (const std::string& c : cases) {
    std::unique_ptr<ScramServer> server = RfcServerAfterFirst();
    EXPECT_EQ(server->HandleClientFinal(c).status().code(),
              absl::StatusCode::kInvalidArgument)
        << c;
  }
  // Sanity: the same server setup accepts the real message.
  EXPECT_TRUE(RfcServerAfterFirst()->HandleClientFinal(kRfcClientFinal).ok());
}

TEST(ScramServerMalformedTest, ExtensionBeforeProofAccepted) {
  // Extensions change the AuthMessage, so the RFC proof no longer matches:
  // the message parses (PermissionDenied, not InvalidArgument).
  std::unique_ptr<ScramServer> server = RfcServerAfterFirst();
  EXPECT_EQ(server
                ->HandleClientFinal(
                    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$"
                    "k0,x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(ScramServerStateTest, OutOfOrderAndRepeatedCalls) {
  ScramServer server(RfcVerifier(), "user", kMockSecret);
  EXPECT_EQ(server.HandleClientFinal(kRfcClientFinal).status().code(),
            absl::StatusCode::kFailedPrecondition);

  std::unique_ptr<ScramServer> done = RfcServerAfterFirst();
  EXPECT_EQ(done->HandleClientFirst(kRfcClientFirst).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(done->HandleClientFinal(kRfcClientFinal).ok());
  EXPECT_EQ(done->HandleClientFinal(kRfcClientFinal).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ScramServerStateTest, InvalidStoredVerifierIsInternal) {
  ScramVerifier v = RfcVerifier();
  v.stored_key = "short";
  ScramServer server(v, "user", kMockSecret);
  EXPECT_EQ(server.HandleClientFirst(kRfcClientFirst).status().code(),
            absl::StatusCode::kInternal);
}

TEST(ScramClientMalformedTest, ServerFirstRejected) {
  const std::string n = std::string(kRfcClientNonce);
  const std::string cases[] = {
      "",
      "m=ext,r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
      "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",                 // missing r=
      "r=" + n + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",     // not extended
      "r=XX" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  // not a prefix
      "r=" + n + "x y,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",  // non-printable
      "r=" + n + "x,i=4096",                               // missing s=
      "r=" + n + "x,s=,i=4096",                            // empty salt
      "r=" + n + "x,s=!!!!,i=4096",                        // bad base64
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ=",            // bad base64
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==",           // missing i=
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=10000001",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=abc",
      "r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,garbage",
  };
  for (const std::string& c : cases) {
    ScramClient client("pencil", n, "user");
    EXPECT_EQ(client.HandleServerFirst(c).status().code(),
              absl::StatusCode::kInvalidArgument)
        << c;
  }
  ScramClient ok("pencil", n, "user");
  EXPECT_TRUE(
      ok.HandleServerFirst("r=" + n + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=2").ok());
}

TEST(ScramClientMalformedTest, ServerFinalErrors) {
  {
    ScramClient client("pencil", std::string(kRfcClientNonce), "user");
    ASSERT_TRUE(client.HandleServerFirst(kRfcServerFirst).ok());
    absl::Status s = client.VerifyServerFinal("e=invalid-proof");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("invalid-proof"));
  }
  for (const char* c : {"", "x=1", "v=!!!!", "v=6rriTRBi23WpRR,junk"}) {
    ScramClient client("pencil", std::string(kRfcClientNonce), "user");
    ASSERT_TRUE(client.HandleServerFirst(kRfcServerFirst).ok());
    EXPECT_EQ(client.VerifyServerFinal(c).code(),
              absl::StatusCode::kInvalidArgument)
        << c;
  }
}

TEST(ScramClientStateTest, OutOfOrderCalls) {
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  EXPECT_EQ(client.VerifyServerFinal(kRfcServerFinal).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(client.HandleServerFirst(kRfcServerFirst).ok());
  EXPECT_EQ(client.HandleServerFirst(kRfcServerFirst).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(client.VerifyServerFinal(kRfcServerFinal).ok());
  EXPECT_EQ(client.VerifyServerFinal(kRfcServerFinal).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ScramClientStateTest, InvalidTestingNonceReported) {
  ScramClient client("pencil", "bad,nonce");
  EXPECT_EQ(client.HandleServerFirst(kRfcServerFirst).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// md5

TEST(Md5PasswordResponseTest, KnownAnswer) {
  // python3 -c "import hashlib;i=hashlib.md5(b'secret'+b'postgres').hexdigest()
  //   .encode();print('md5'+hashlib.md5(i+bytes([1,2,3,4])).hexdigest())"
  EXPECT_EQ(Md5PasswordResponse("postgres", "secret",
                                absl::string_view("\x01\x02\x03\x04", 4)),
            "md5bb41a296aab6baccb36ff243a562abff");
}

TEST(Md5PasswordResponseTest, DependsOnEveryInput) {
  const std::string base = Md5PasswordResponse("postgres", "secret", "abcd");
  EXPECT_EQ(base.size(), 35u);
  EXPECT_NE(Md5PasswordResponse("postgre", "secret", "abcd"), base);
  EXPECT_NE(Md5PasswordResponse("postgres", "secreT", "abcd"), base);
  EXPECT_NE(Md5PasswordResponse("postgres", "secret", "abce"), base);
}

}  // namespace
}  // namespace warden::dataplane::auth
