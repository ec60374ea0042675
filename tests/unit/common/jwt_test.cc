#include "common/jwt.h"

#include <openssl/pem.h>

#include <string>

#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/common/jwt_test_util.h"

namespace warden::jwt {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;
using testing::B64;
using testing::EcJwk;
using testing::HmacToken;
using testing::NewEc;
using testing::NewRsa;
using testing::PkeyPtr;
using testing::RsaJwk;
using testing::Token;

constexpr char kIssuer[] = "https://idp.test/oauth2/default";
constexpr int64_t kNow = 1'800'000'000;

class JwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rsa_ = NewRsa();
    ec_ = NewEc();
    json jwks = {{"keys", {RsaJwk(rsa_.get(), "r1"), EcJwk(ec_.get(), "e1")}}};
    auto keys = KeySet::FromJwks(jwks.dump());
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *std::move(keys);
    options_.issuer = kIssuer;
    options_.audiences = {"warden"};
    options_.now = absl::FromUnixSeconds(kNow);
  }

  json Payload() const {
    return {{"iss", kIssuer},
            {"sub", "00u1abcd"},
            {"aud", "warden"},
            {"email", "alice@example.com"},
            {"groups", {"engineers", "dba"}},
            {"email_verified", true},
            {"iat", kNow - 60},
            {"exp", kNow + 3600}};
  }
  std::string Rs(const json& payload, const std::string& kid = "r1") {
    return Token(rsa_.get(), {{"alg", "RS256"}, {"kid", kid}, {"typ", "JWT"}},
                 payload);
  }
  std::string Es(const json& payload) {
    return Token(ec_.get(), {{"alg", "ES256"}, {"kid", "e1"}}, payload);
  }
  std::string Refusal(const std::string& token) {
    auto claims = Verify(token, keys_, options_);
    EXPECT_FALSE(claims.ok()) << "verified unexpectedly";
    if (claims.ok()) return "";
    EXPECT_EQ(claims.status().code(), absl::StatusCode::kUnauthenticated);
    return std::string(claims.status().message());
  }

  PkeyPtr rsa_, ec_;
  KeySet keys_;
  VerifyOptions options_;
};

TEST_F(JwtTest, ValidRs256AndEs256TokensYieldTheirClaims) {
  for (const std::string& token : {Rs(Payload()), Es(Payload())}) {
    auto claims = Verify(token, keys_, options_);
    ASSERT_TRUE(claims.ok()) << claims.status();
    EXPECT_EQ(claims->issuer, kIssuer);
    EXPECT_EQ(claims->subject, "00u1abcd");
    EXPECT_EQ(claims->String("email"), "alice@example.com");
    EXPECT_EQ(claims->String("email_verified"), "true");
    EXPECT_EQ(claims->List("groups"),
              (std::vector<std::string>{"engineers", "dba"}));
    EXPECT_EQ(claims->List("email"),
              std::vector<std::string>{"alice@example.com"});
    EXPECT_TRUE(claims->List("roles").empty());
    EXPECT_EQ(claims->expires, absl::FromUnixSeconds(kNow + 3600));
  }
  EXPECT_EQ(Verify(Es(Payload()), keys_, options_)->algorithm, "ES256");
  // Claims of other types are present but never read as a value.
  json odd = Payload();
  odd["email_verified"] = 0;
  odd["address"] = {{"street", "x"}};
  odd["nickname"] = nullptr;
  auto claims = Verify(Rs(odd), keys_, options_);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->String("email_verified"), "");
  EXPECT_EQ(claims->other_types,
            (std::set<std::string>{"address", "email_verified", "exp", "iat",
                                   "nickname"}));
}

TEST_F(JwtTest, TimeClaimsAreCheckedWithBoundedSkew) {
  json p = Payload();
  p["exp"] = kNow - 61;
  EXPECT_THAT(Refusal(Rs(p)), HasSubstr("token expired at 2027-01-15T07:58:59Z"));
  p["exp"] = kNow - 30;  // within the 60 s skew
  EXPECT_TRUE(Verify(Rs(p), keys_, options_).ok());
  p = Payload();
  p["nbf"] = kNow + 120;
  EXPECT_THAT(Refusal(Rs(p)), HasSubstr("not valid before"));
  p["nbf"] = kNow + 30;
  EXPECT_TRUE(Verify(Rs(p), keys_, options_).ok());
  p = Payload();
  p["iat"] = kNow + 600;
  EXPECT_THAT(Refusal(Rs(p)), HasSubstr("issued in the future"));
  p = Payload();
  p.erase("exp");
  EXPECT_THAT(Refusal(Rs(p)), HasSubstr("no expiry"));
  p = Payload();
  p["exp"] = "tomorrow";
  EXPECT_THAT(Refusal(Rs(p)), HasSubstr("'exp' is not a number"));
  p = Payload();
  p["exp"] = kNow + 3 * 86400;  // lives three days
  EXPECT_THAT(Refusal(Rs(p)), HasSubstr("longer than 24h"));
}

TEST_F(JwtTest, IssuerAndAudienceMustMatch) {
  json p = Payload();
  p["iss"] = "https://evil.test";
  EXPECT_THAT(Refusal(Rs(p)),
              HasSubstr("issuer 'https://evil.test' is not"));
  p = Payload();
  p["aud"] = "someone-else";
  EXPECT_THAT(Refusal(Rs(p)),
              HasSubstr("audience 'someone-else' is not one of 'warden'"));
  p["aud"] = json::array({"someone-else", "warden"});
  EXPECT_TRUE(Verify(Rs(p), keys_, options_).ok());
  p.erase("aud");
  EXPECT_THAT(Refusal(Rs(p)), HasSubstr("audience"));
}

TEST_F(JwtTest, ForgedAndAlteredTokensFail) {
  // A flipped bit in the signature.
  std::string token = Rs(Payload());
  std::string sig;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(
      token.substr(token.rfind('.') + 1), &sig));
  sig[10] ^= 1;
  EXPECT_THAT(Refusal(token.substr(0, token.rfind('.') + 1) + B64(sig)),
              HasSubstr("signature does not verify with key 'r1'"));
  // The payload changed after signing (another user).
  json other = Payload();
  other["email"] = "mallory@example.com";
  const std::string honest = Rs(Payload());
  const size_t d1 = honest.find('.'), d2 = honest.rfind('.');
  const std::string swapped = honest.substr(0, d1 + 1) + B64(other.dump()) +
                              honest.substr(d2);
  EXPECT_THAT(Refusal(swapped), HasSubstr("signature does not verify"));
  // Signed by a key the provider never published, under a known kid.
  PkeyPtr stranger = NewRsa();
  EXPECT_THAT(Refusal(Token(stranger.get(), {{"alg", "RS256"}, {"kid", "r1"}},
                            Payload())),
              HasSubstr("signature does not verify"));
  // An ES256 signature truncated.
  std::string es = Es(Payload());
  EXPECT_THAT(Refusal(es.substr(0, es.size() - 4)),
              HasSubstr("signature does not verify"));
}

TEST_F(JwtTest, AlgorithmConfusionIsRefused) {
  // alg none, no signature.
  const std::string none = absl::StrCat(
      B64(json{{"alg", "none"}, {"kid", "r1"}}.dump()), ".",
      B64(Payload().dump()), ".");
  EXPECT_THAT(Refusal(none), HasSubstr("algorithm 'none' is not allowed"));
  // HS256 with the provider's public key as the HMAC secret.
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, rsa_.get());
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  const std::string pem(data, len);
  BIO_free(bio);
  EXPECT_THAT(Refusal(HmacToken(pem, {{"alg", "HS256"}, {"kid", "r1"}},
                                Payload())),
              HasSubstr("algorithm 'HS256' is not allowed"));
  // The RSA key's kid with an ES256 header.
  EXPECT_THAT(Refusal(Token(ec_.get(), {{"alg", "ES256"}, {"kid", "r1"}},
                            Payload())),
              HasSubstr("key 'r1' is for RS256, the token says ES256"));
  // An algorithm the provider's config does not allow.
  options_.algorithms = {"RS256"};
  EXPECT_THAT(Refusal(Es(Payload())),
              HasSubstr("algorithm 'ES256' is not allowed (allowed: RS256;"));
  // Critical extensions Warden does not understand.
  options_.algorithms = {"RS256", "ES256"};
  EXPECT_THAT(Refusal(Token(rsa_.get(),
                            {{"alg", "RS256"}, {"kid", "r1"}, {"crit", {"b64"}}},
                            Payload())),
              HasSubstr("critical header"));
}

// alg and kid are read before the signature is checked: anyone can write
// them, so a refusal quotes them capped and escaped, and says so.
TEST_F(JwtTest, UnverifiedHeaderValuesAreLabelledCappedAndEscaped) {
  const std::string forged_line =
      "r9'\n2026-12-06T00:00:00Z prod alice ALLOW DELETE FROM orders";
  const std::string kid_refusal = Refusal(Rs(Payload(), forged_line));
  EXPECT_THAT(kid_refusal, HasSubstr("unverified header value"));
  EXPECT_THAT(kid_refusal, HasSubstr("unknown key id 'r9\\'\\n2026"));
  EXPECT_EQ(kid_refusal.find('\n'), std::string::npos) << kid_refusal;

  const std::string huge(10000, 'k');
  const std::string long_refusal = Refusal(Rs(Payload(), huge));
  EXPECT_LT(long_refusal.size(), 300u) << long_refusal;
  EXPECT_THAT(long_refusal, HasSubstr("...(10000 bytes)"));

  const std::string alg_refusal = Refusal(Token(
      rsa_.get(), {{"alg", "RS256\r\nX"}, {"kid", "r1"}}, Payload()));
  EXPECT_THAT(alg_refusal, HasSubstr("algorithm 'RS256\\r\\nX'"));
  EXPECT_THAT(alg_refusal, HasSubstr("unverified header value"));
  EXPECT_EQ(alg_refusal.find('\n'), std::string::npos) << alg_refusal;
}

TEST_F(JwtTest, KeyIdsMustBeKnown) {
  EXPECT_THAT(Refusal(Rs(Payload(), "r2")),
              HasSubstr("unknown key id 'r2'"));
  EXPECT_THAT(Refusal(Token(rsa_.get(), {{"alg", "RS256"}}, Payload())),
              HasSubstr("names no key id"));
  // With a single key, a token without kid uses it.
  auto single = KeySet::FromJwks(
      json{{"keys", {RsaJwk(rsa_.get(), "only")}}}.dump());
  ASSERT_TRUE(single.ok());
  EXPECT_TRUE(Verify(Token(rsa_.get(), {{"alg", "RS256"}}, Payload()), *single,
                     options_)
                  .ok());
}

TEST_F(JwtTest, MalformedTokensAreRefusedWithoutCrashing) {
  for (const std::string& bad :
       {std::string(""), std::string("abc"), std::string("a.b"),
        std::string("a.b.c.d"), std::string("....."),
        absl::StrCat(B64("{}"), "=.", B64("{}"), ".xx"),
        absl::StrCat(B64("not json"), ".", B64("{}"), "."),
        absl::StrCat(B64("[1,2]"), ".", B64("{}"), "."),
        absl::StrCat("!!!.", B64("{}"), "."), std::string(20000, 'a')}) {
    EXPECT_FALSE(Verify(bad, keys_, options_).ok()) << bad.substr(0, 40);
  }
  // A signed token whose payload is not an object.
  const std::string input =
      absl::StrCat(B64(json{{"alg", "RS256"}, {"kid", "r1"}}.dump()), ".",
                   B64("[\"x\"]"));
  const std::string token = absl::StrCat(
      input, ".", B64(testing::Sign(rsa_.get(), "RS256", input)));
  EXPECT_THAT(Refusal(token), HasSubstr("payload is not a JSON object"));
}

TEST(KeySetTest, UnusableKeysAreSkippedAndNamed) {
  PkeyPtr rsa = NewRsa(), small = NewRsa(1024), ec = NewEc();
  json p384 = EcJwk(ec.get(), "p384");
  p384["crv"] = "P-384";
  json off_curve = EcJwk(ec.get(), "bent");
  std::string y;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(off_curve["y"].get<std::string>(), &y));
  y[31] ^= 1;
  off_curve["y"] = B64(y);
  json enc = RsaJwk(rsa.get(), "enc");
  enc["use"] = "enc";
  json jwks = {{"keys",
                {{{"kty", "oct"}, {"kid", "hmac"}, {"k", "c2VjcmV0"}},
                 RsaJwk(small.get(), "small"), p384, off_curve, enc,
                 RsaJwk(rsa.get(), "good")}}};
  auto keys = KeySet::FromJwks(jwks.dump());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 1u);
  EXPECT_NE(keys->Find("good"), nullptr);
  EXPECT_EQ(keys->Find("hmac"), nullptr);
  ASSERT_EQ(keys->skipped().size(), 5u);
  EXPECT_THAT(keys->skipped()[0], HasSubstr("key type 'oct'"));
  EXPECT_THAT(keys->skipped()[1], HasSubstr("1024 bits"));
  EXPECT_THAT(keys->skipped()[2], HasSubstr("P-384"));
  EXPECT_THAT(keys->skipped()[3], HasSubstr("not on P-256"));
  EXPECT_THAT(keys->skipped()[4], HasSubstr("use 'enc'"));

  auto none = KeySet::FromJwks(
      json{{"keys", {{{"kty", "oct"}, {"k", "c2VjcmV0"}}}}}.dump());
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(std::string(none.status().message()),
              HasSubstr("no usable signing key"));
  EXPECT_FALSE(KeySet::FromJwks("{\"keys\": 3}").ok());
  EXPECT_FALSE(KeySet::FromJwks("not json").ok());
  EXPECT_FALSE(KeySet::FromJwks("[]").ok());
}

}  // namespace
}  // namespace warden::jwt
