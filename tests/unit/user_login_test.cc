// wardenctl login's parts below the network: the shared claim mapping
// (common/oidc_claims), the certificate's names (common/user_identity),
// Warden's CA issuing a person's certificate, warden-control's
// IssueUserCertificate deciding on a token, and the proxy's
// CertAuthenticator reading the certificate back.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "common/jwt.h"
#include "common/oidc_claims.h"
#include "common/user_identity.h"
#include "common/x509.h"
#include "controlplane/ca/ca.h"
#include "controlplane/server/login_service.h"
#include "dataplane/session/cert_authenticator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/jwt_test_util.h"

namespace warden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace jt = ::warden::jwt::testing;
using session::AuthStep;
using session::CertAuthenticator;

jwt::Claims ClaimsOf(std::map<std::string, std::string> strings,
                     std::map<std::string, std::vector<std::string>> lists = {}) {
  jwt::Claims c;
  c.strings = std::move(strings);
  c.string_lists = std::move(lists);
  return c;
}

// --- common/oidc_claims ----------------------------------------------------

TEST(MapClaims, UserFromEmailAndGroupsFromEveryClaimWithoutDuplicates) {
  oidc::ClaimRules rules;
  rules.groups_claims = {"groups", "roles"};
  auto m = oidc::MapClaims(
      ClaimsOf({{"email", "ana@example.com"}, {"roles", "dba"}},
               {{"groups", {"eng", "oncall"}}}),
      rules);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->user, "ana@example.com");
  EXPECT_THAT(m->groups, ElementsAre("eng", "oncall", "dba"));
  auto again = oidc::MapClaims(
      ClaimsOf({{"email", "a@x"}}, {{"groups", {"eng"}}, {"roles", {"eng"}}}),
      rules);
  ASSERT_TRUE(again.ok());
  EXPECT_THAT(again->groups, ElementsAre("eng"));
}

TEST(MapClaims, RequiredClaimMustMatch) {
  oidc::ClaimRules rules;
  rules.provider = "google";
  rules.required_claims = {{"hd", "example.com"}};
  auto m = oidc::MapClaims(ClaimsOf({{"email", "a@x"}, {"hd", "evil.com"}}),
                           rules);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(m.status().message(),
              HasSubstr("claim 'hd' is 'evil.com', google requires "
                        "'example.com'"));
  EXPECT_TRUE(oidc::MapClaims(ClaimsOf({{"email", "a@x"}, {"hd", "example.com"}}),
                              rules)
                  .ok());
}

TEST(MapClaims, UnverifiedEmailAndMissingUserAreRefused) {
  oidc::ClaimRules rules;
  auto unverified = oidc::MapClaims(
      ClaimsOf({{"email", "a@x"}, {"email_verified", "false"}}), rules);
  EXPECT_THAT(unverified.status().message(), HasSubstr("not verified"));
  auto missing = oidc::MapClaims(ClaimsOf({{"sub", "123"}}), rules);
  EXPECT_THAT(missing.status().message(),
              HasSubstr("no 'email' claim to name the user"));
  rules.user_claim = "sub";  // email_verified only matters for email
  auto by_sub = oidc::MapClaims(
      ClaimsOf({{"sub", "123"}, {"email_verified", "false"}}), rules);
  ASSERT_TRUE(by_sub.ok());
  EXPECT_EQ(by_sub->user, "123");
}

TEST(ClaimRulesFromSpec, DefaultsAndOverrides) {
  warden::v1::IdentityProviderSpec spec;
  spec.set_name("okta");
  oidc::ClaimRules d = oidc::ClaimRulesFromSpec(spec);
  EXPECT_EQ(d.user_claim, "email");
  EXPECT_THAT(d.groups_claims, ElementsAre("groups"));
  spec.set_user_claim("preferred_username");
  spec.add_groups_claims("roles");
  auto* rc = spec.add_required_claims();
  rc->set_claim("tid");
  rc->set_value("t1");
  spec.set_clock_skew_seconds(5);
  oidc::ClaimRules r = oidc::ClaimRulesFromSpec(spec);
  EXPECT_EQ(r.user_claim, "preferred_username");
  EXPECT_THAT(r.groups_claims, ElementsAre("roles"));
  ASSERT_EQ(r.required_claims.size(), 1u);
  EXPECT_EQ(r.required_claims[0].second, "t1");
  EXPECT_EQ(oidc::VerifyOptionsFromSpec(spec).clock_skew, absl::Seconds(5));
}

// --- common/user_identity -------------------------------------------------

TEST(UserIdentity, UrisRoundTripWithEncodedNames) {
  UserIdentity in{"ana@example.com", {"eng team", "a/b"}, "okta"};
  const auto uris = UserUris(in);
  EXPECT_THAT(uris, ElementsAre("spiffe://warden/user/ana%40example.com",
                                "spiffe://warden/group/eng%20team",
                                "spiffe://warden/group/a%2Fb",
                                "spiffe://warden/idp/okta"));
  auto out = UserIdentityFromUris(uris);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->user, in.user);
  EXPECT_EQ(out->groups, in.groups);
  EXPECT_EQ(out->provider, "okta");
}

TEST(UserIdentity, MalformedNamesAreRefused) {
  EXPECT_TRUE(absl::IsNotFound(
      UserIdentityFromUris({"spiffe://warden/proxy/prod/p1"}).status()));
  EXPECT_FALSE(UserIdentityFromUris({"spiffe://warden/user/a"}).ok());  // no idp
  EXPECT_FALSE(UserIdentityFromUris({"spiffe://warden/user/a",
                                     "spiffe://warden/user/b",
                                     "spiffe://warden/idp/x"})
                   .ok());
  EXPECT_FALSE(PercentDecode("a%4").ok());
  EXPECT_FALSE(PercentDecode("a%zz").ok());
  EXPECT_FALSE(PercentDecode("a/b").ok());
  EXPECT_FALSE(PercentDecode("").ok());
  EXPECT_EQ(PercentDecode("a%40b").value(), "a@b");
}

// --- Warden's CA, warden-control's decision, the proxy's check -------------

class UserCertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = x509::GenerateKey();
    auto cert = x509::MakeSelfSignedCa(*key, {"Warden CA", {}, {}, {}},
                                       absl::Now(), absl::Hours(24));
    authority_ = std::move(controlplane::ca::Authority::FromPem(*cert, *key).value());
    user_key_ = x509::GenerateKey().value();
    csr_ = x509::MakeRequest(user_key_, "whoever").value();

    idp_key_ = jt::NewEc();
    auto* p = bundle_.add_identity_providers();
    p->set_name("corp");
    p->set_issuer("https://idp.test");
    p->add_audiences("warden");
    p->add_required_claims()->set_claim("hd");
    p->mutable_required_claims(0)->set_value("example.com");
    p->set_jwks(nlohmann::json({{"keys", {jt::EcJwk(idp_key_.get(), "e1")}}})
                    .dump());
  }

  std::string IdToken(const std::string& user, int64_t lifetime = 600,
                      const std::string& hd = "example.com") {
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    return jt::Token(idp_key_.get(), {{"alg", "ES256"}, {"kid", "e1"}},
                     {{"iss", "https://idp.test"},
                      {"aud", "warden"},
                      {"email", user},
                      {"hd", hd},
                      {"groups", {"eng", "oncall"}},
                      {"iat", now - 10},
                      {"exp", now + lifetime}});
  }

  absl::StatusOr<warden::v1::IssueUserCertificateResponse> Issue(
      const std::string& token, const std::string& csr) {
    warden::v1::IssueUserCertificateRequest request;
    request.set_id_token(token);
    request.set_csr_pem(csr);
    return controlplane::server::IssueUserCertificate(
        bundle_, *authority_, request, absl::Now(), absl::Hours(8));
  }

  session::AuthRequest Request(const std::string& user,
                               const std::string& cert_pem) {
    session::AuthRequest r;
    r.user = user;
    r.database = "shop";
    r.environment = "prod";
    r.tls = true;
    r.peer_certificate_pem = cert_pem;
    return r;
  }

  std::unique_ptr<controlplane::ca::Authority> authority_;
  std::string user_key_, csr_;
  jt::PkeyPtr idp_key_;
  warden::v1::PolicyBundle bundle_;
};

TEST_F(UserCertificateTest, IssueUserNamesUserGroupsAndProviderForClientAuth) {
  auto cert = authority_->IssueUser(csr_, {"ana@example.com", {"eng"}, "corp"},
                                    absl::Now(), absl::Hours(8));
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto parsed = x509::Parse(*cert);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->subject.common_name, "ana@example.com");
  EXPECT_THAT(parsed->subject.uris,
              ElementsAre("spiffe://warden/user/ana%40example.com",
                          "spiffe://warden/group/eng",
                          "spiffe://warden/idp/corp"));
  EXPECT_LE(parsed->not_after, absl::Now() + absl::Hours(8));
  EXPECT_GT(parsed->not_after, absl::Now() + absl::Hours(7));
  EXPECT_TRUE(x509::KeyMatchesCertificate(user_key_, *cert));
  EXPECT_TRUE(x509::Verify(*cert, authority_->certificate_pem(), absl::Now(),
                           x509::Purpose::kClientAuth)
                  .ok());
  // A server certificate of the same CA is no client certificate.
  auto server = authority_->IssueServer({"localhost"}, {}, absl::Now(),
                                        absl::Hours(1));
  EXPECT_FALSE(x509::Verify(server->certificate_pem,
                            authority_->certificate_pem(), absl::Now(),
                            x509::Purpose::kClientAuth)
                   .ok());
}

TEST_F(UserCertificateTest, IssueUserRefusesBadRequests) {
  EXPECT_EQ(authority_->IssueUser("not a csr", {"a", {}, "corp"}, absl::Now(),
                                  absl::Hours(1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(
      authority_->IssueUser(csr_, {"", {}, "corp"}, absl::Now(), absl::Hours(1))
          .ok());
  // Over-long users keep their full name in the URI; CN is cut to 64.
  const std::string long_user(80, 'x');
  auto cert = authority_->IssueUser(csr_, {long_user, {}, "corp"}, absl::Now(),
                                    absl::Hours(1));
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(UserIdentityFromUris(x509::Parse(*cert)->subject.uris)->user,
            long_user);
}

TEST_F(UserCertificateTest, DeactivatedDirectoryUsersGetNoCertificate) {
  auto* entry = bundle_.add_directory();
  entry->set_user_name("ana.smith");
  entry->add_aliases("ana@example.com");  // matched by e-mail too
  entry->set_active(false);
  auto refused = Issue(IdToken("Ana@Example.com"), csr_);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("is deactivated in the identity provider's directory"));
  entry->set_active(true);
  EXPECT_TRUE(Issue(IdToken("ana@example.com"), csr_).ok());
}

TEST_F(UserCertificateTest, ValidTokenEarnsACertificateTheProxyAccepts) {
  auto issued = Issue(IdToken("ana@example.com"), csr_);
  ASSERT_TRUE(issued.ok()) << issued.status();
  EXPECT_EQ(issued->user(), "ana@example.com");
  EXPECT_THAT(issued->groups(), ElementsAre("eng", "oncall"));
  EXPECT_EQ(issued->provider(), "corp");
  EXPECT_EQ(issued->ca_certificate_pem(), authority_->certificate_pem());

  AuthStep ok = CertAuthenticator::Authenticate(
      Request("ana@example.com", issued->certificate_pem()),
      authority_->certificate_pem(), absl::Now(), &bundle_);
  ASSERT_EQ(ok.state, AuthStep::State::kSuccess) << ok.error;
  EXPECT_EQ(ok.identity.user(), "ana@example.com");
  EXPECT_THAT(ok.identity.groups(), ElementsAre("eng", "oncall"));
  EXPECT_EQ(ok.identity.auth_method(), "cert:corp");
  EXPECT_EQ(ok.identity.kind(), warden::v1::IDENTITY_KIND_HUMAN);
}

TEST_F(UserCertificateTest, RefusedTokensSayWhy) {
  auto expired = Issue(IdToken("ana@example.com", -120), csr_);
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(expired.status().message(), HasSubstr("token refused: "));
  EXPECT_THAT(expired.status().message(), HasSubstr("expired"));

  auto wrong_hd = Issue(IdToken("ana@example.com", 600, "evil.com"), csr_);
  EXPECT_EQ(wrong_hd.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(wrong_hd.status().message(),
              HasSubstr("token refused: claim 'hd' is 'evil.com'"));

  auto garbage = Issue("not.a.token", csr_);
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kUnauthenticated);

  auto bad_csr = Issue(IdToken("ana@example.com"), "-----BEGIN nonsense");
  EXPECT_EQ(bad_csr.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_csr.status().message(), HasSubstr("certificate request"));

  bundle_.mutable_identity_providers(0)->set_issuer("https://other.test");
  auto unknown = Issue(IdToken("ana@example.com"), csr_);
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("issuer 'https://idp.test' is not an identity "
                        "provider"));
  bundle_.clear_identity_providers();
  EXPECT_EQ(Issue(IdToken("ana@example.com"), csr_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(UserCertificateTest, ProxyRefusesOtherUsersOtherCasProxiesAndNoCert) {
  const std::string cert =
      authority_->IssueUser(csr_, {"ana@example.com", {"eng"}, "corp"},
                            absl::Now(), absl::Hours(1))
          .value();
  const std::string ca = authority_->certificate_pem();
  auto refused = [&](const session::AuthRequest& r, absl::Time now,
                     const std::string& want) {
    AuthStep s = CertAuthenticator::Authenticate(r, ca, now, nullptr);
    EXPECT_EQ(s.state, AuthStep::State::kFailure);
    EXPECT_EQ(s.client_sqlstate, "28000");
    EXPECT_THAT(s.client_error, HasSubstr("Warden: certificate refused: "));
    EXPECT_THAT(s.client_error, HasSubstr(want));
    return s;
  };
  AuthStep other_user =
      refused(Request("bob@example.com", cert), absl::Now(),
              "is for 'ana@example.com', not 'bob@example.com'");
  EXPECT_EQ(other_user.method, "cert:corp");
  refused(Request("ana@example.com", ""), absl::Now(), "no client certificate");
  refused(Request("ana@example.com", cert), absl::Now() + absl::Hours(2),
          "not a valid certificate from Warden's CA");

  auto other_key = x509::GenerateKey().value();
  auto other_ca_cert = x509::MakeSelfSignedCa(
      other_key, {"Warden CA", {}, {}, {}}, absl::Now(), absl::Hours(24));
  auto other = controlplane::ca::Authority::FromPem(*other_ca_cert, other_key);
  const std::string foreign =
      (*other)->IssueUser(csr_, {"ana@example.com", {}, "corp"}, absl::Now(),
                          absl::Hours(1))
          .value();
  refused(Request("ana@example.com", foreign), absl::Now(),
          "not a valid certificate from Warden's CA");

  const std::string proxy =
      authority_->IssueProxy(csr_, {"p1", "prod"}, absl::Now(), absl::Hours(1))
          .value();
  refused(Request("p1", proxy), absl::Now(), "names a Warden proxy");

  AuthStep unknown_ca = CertAuthenticator::Authenticate(
      Request("ana@example.com", cert), "", absl::Now(), nullptr);
  EXPECT_THAT(unknown_ca.client_error, HasSubstr("does not know Warden's CA"));
}

TEST_F(UserCertificateTest, ProxyRefusesProvidersTheBundleNoLongerAccepts) {
  const std::string cert =
      authority_->IssueUser(csr_, {"ana@example.com", {}, "corp"}, absl::Now(),
                            absl::Hours(1))
          .value();
  const auto request = Request("ana@example.com", cert);  // environment prod
  const std::string ca = authority_->certificate_pem();
  bundle_.mutable_identity_providers(0)->add_environments("stag*");
  AuthStep other_env =
      CertAuthenticator::Authenticate(request, ca, absl::Now(), &bundle_);
  EXPECT_EQ(other_env.state, AuthStep::State::kFailure);
  EXPECT_THAT(other_env.client_error,
              HasSubstr("identity provider corp is not accepted in "
                        "environment prod"));
  bundle_.mutable_identity_providers(0)->add_environments("pr*");
  EXPECT_EQ(CertAuthenticator::Authenticate(request, ca, absl::Now(), &bundle_)
                .state,
            AuthStep::State::kSuccess);
  bundle_.clear_identity_providers();
  AuthStep removed =
      CertAuthenticator::Authenticate(request, ca, absl::Now(), &bundle_);
  EXPECT_THAT(removed.client_error,
              HasSubstr("identity provider corp is not in the policy bundle"));
}

TEST(PrivateKeyDer, IsPkcs8OpenSslReadsBack) {
  const std::string pem = x509::GenerateKey().value();
  auto der = x509::PrivateKeyDer(pem);
  ASSERT_TRUE(der.ok()) << der.status();
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
  PKCS8_PRIV_KEY_INFO* info =
      d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der->size()));
  ASSERT_NE(info, nullptr);
  EVP_PKEY* key = EVP_PKCS82PKEY(info);
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(key, "EC"));
  EVP_PKEY_free(key);
  PKCS8_PRIV_KEY_INFO_free(info);
  EXPECT_FALSE(x509::PrivateKeyDer("nope").ok());
}

}  // namespace
}  // namespace warden
