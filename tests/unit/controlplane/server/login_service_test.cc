// wardenctl login's parts below the network: the shared claim mapping
// (common/oidc_claims), the certificate's names (common/user_identity),
// Warden's CA issuing a person's certificate, warden-control's
// IssueUserCertificate deciding on a token, and the proxy's
// CertAuthenticator reading the certificate back: the same user, groups and
// kind (human, agent, service) as the token gives, and no certificate
// without a kind taken for a human.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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
#include "tests/unit/common/jwt_test_util.h"

namespace warden {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace jt = ::warden::jwt::testing;
using dataplane::session::AuthStep;
using dataplane::session::CertAuthenticator;

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
  // Anything but true is no verification: 0, null, "no" (red team).
  for (const char* value : {"0", "no", "", "FALSE"}) {
    EXPECT_FALSE(oidc::MapClaims(
                     ClaimsOf({{"email", "a@x"}, {"email_verified", value}}),
                     rules)
                     .ok())
        << value;
  }
  jwt::Claims numeric = ClaimsOf({{"email", "a@x"}});
  numeric.other_types.insert("email_verified");  // 0 or null in the token
  EXPECT_THAT(oidc::MapClaims(numeric, rules).status().message(),
              HasSubstr("email_verified is not true"));
  EXPECT_TRUE(oidc::MapClaims(
                  ClaimsOf({{"email", "a@x"}, {"email_verified", "true"}}), rules)
                  .ok());
  EXPECT_TRUE(oidc::MapClaims(ClaimsOf({{"email", "a@x"}}), rules).ok())
      << "absent (Entra ID) is accepted";
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
  UserIdentity in{"ana@example.com", {"eng team", "a/b"}, "okta", "agent"};
  const auto uris = UserUris(in);
  EXPECT_THAT(uris, ElementsAre("spiffe://warden/user/ana%40example.com",
                                "spiffe://warden/group/eng%20team",
                                "spiffe://warden/group/a%2Fb",
                                "spiffe://warden/idp/okta",
                                "spiffe://warden/kind/agent"));
  auto out = UserIdentityFromUris(uris);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->user, in.user);
  EXPECT_EQ(out->groups, in.groups);
  EXPECT_EQ(out->provider, "okta");
  EXPECT_EQ(out->kind, "agent");
}

TEST(UserIdentity, EveryKindRoundTripsAndNothingElseIsAKind) {
  for (const char* kind : {"human", "agent", "service"}) {
    EXPECT_TRUE(IsIdentityKind(kind));
    auto out = UserIdentityFromUris(UserUris({"a", {}, "corp", kind}));
    ASSERT_TRUE(out.ok()) << kind << ": " << out.status();
    EXPECT_EQ(out->kind, kind);
  }
  for (const char* not_kind : {"", "Human", "robot", "human "}) {
    EXPECT_FALSE(IsIdentityKind(not_kind)) << not_kind;
  }
}

TEST(UserIdentity, NoKindIsRefusedNeverHuman) {
  // What a warden-control from before kinds were carried wrote.
  auto old = UserIdentityFromUris({"spiffe://warden/user/ana%40example.com",
                                   "spiffe://warden/group/eng",
                                   "spiffe://warden/idp/corp"});
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(old.status().message(),
            "certificate from an older warden-control carries no identity "
            "kind; run `wardenctl login` again");
  auto unknown = UserIdentityFromUris({"spiffe://warden/user/a",
                                       "spiffe://warden/idp/corp",
                                       "spiffe://warden/kind/robot"});
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown identity kind"));
  auto twice = UserIdentityFromUris(
      {"spiffe://warden/user/a", "spiffe://warden/idp/corp",
       "spiffe://warden/kind/human", "spiffe://warden/kind/agent"});
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twice.status().message(),
              HasSubstr("more than one identity kind"));
  EXPECT_FALSE(UserIdentityFromUris({"spiffe://warden/user/a",
                                     "spiffe://warden/idp/corp",
                                     "spiffe://warden/kind/"})
                   .ok());
  // UserUris writes no kind URI for an identity without one (the CA
  // refuses to issue it, below).
  EXPECT_THAT(
      UserUris({"a", {}, "corp", ""}),
      ElementsAre("spiffe://warden/user/a", "spiffe://warden/idp/corp"));
}

TEST(UserIdentity, MalformedNamesAreRefused) {
  EXPECT_TRUE(absl::IsNotFound(
      UserIdentityFromUris({"spiffe://warden/proxy/prod/p1"}).status()));
  EXPECT_FALSE(UserIdentityFromUris({"spiffe://warden/user/a"}).ok());  // no idp
  EXPECT_FALSE(UserIdentityFromUris(
                   {"spiffe://warden/user/a", "spiffe://warden/user/b",
                    "spiffe://warden/idp/x", "spiffe://warden/kind/human"})
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
    ca_key_ = x509::GenerateKey().value();
    ca_cert_ = x509::MakeSelfSignedCa(ca_key_, {"Warden CA", {}, {}, {}},
                                      absl::Now(), absl::Hours(24))
                   .value();
    authority_ = std::move(
        controlplane::ca::Authority::FromPem(ca_cert_, ca_key_).value());
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

  dataplane::session::AuthRequest Request(const std::string& user,
                               const std::string& cert_pem) {
    dataplane::session::AuthRequest r;
    r.user = user;
    r.database = "shop";
    r.environment = "prod";
    r.tls = true;
    r.peer_certificate_pem = cert_pem;
    return r;
  }

  // A certificate Warden's CA signed with exactly `uris` (what an older
  // warden-control issued, say).
  std::string SignedWithUris(const std::vector<std::string>& uris) {
    return x509::Issue(ca_cert_, ca_key_, x509::RequestPublicKey(csr_).value(),
                       {"ana@example.com", uris, {}, {}},
                       x509::Usage::kClientAuth, absl::Now(), absl::Hours(1))
        .value();
  }

  std::string ca_key_, ca_cert_;
  std::unique_ptr<controlplane::ca::Authority> authority_;
  std::string user_key_, csr_;
  jt::PkeyPtr idp_key_;
  warden::v1::PolicyBundle bundle_;
};

TEST_F(UserCertificateTest, IssueUserNamesUserGroupsProviderKindForClientAuth) {
  auto cert =
      authority_->IssueUser(csr_, {"ana@example.com", {"eng"}, "corp", "agent"},
                            absl::Now(), absl::Hours(8));
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto parsed = x509::Parse(*cert);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->subject.common_name, "ana@example.com");
  EXPECT_THAT(
      parsed->subject.uris,
      ElementsAre("spiffe://warden/user/ana%40example.com",
                  "spiffe://warden/group/eng", "spiffe://warden/idp/corp",
                  "spiffe://warden/kind/agent"));
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
  EXPECT_EQ(authority_
                ->IssueUser("not a csr", {"a", {}, "corp", "human"},
                            absl::Now(), absl::Hours(1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(authority_
                   ->IssueUser(csr_, {"", {}, "corp", "human"}, absl::Now(),
                               absl::Hours(1))
                   .ok());
  // No certificate without a kind proxies accept: none, or an unknown one.
  for (const char* kind : {"", "robot"}) {
    auto no_kind = authority_->IssueUser(csr_, {"a", {}, "corp", kind},
                                         absl::Now(), absl::Hours(1));
    EXPECT_EQ(no_kind.status().code(), absl::StatusCode::kInvalidArgument)
        << kind;
    EXPECT_THAT(no_kind.status().message(), HasSubstr("identity kind"));
  }
  // Over-long users keep their full name in the URI; CN is cut to 64.
  const std::string long_user(80, 'x');
  auto cert = authority_->IssueUser(csr_, {long_user, {}, "corp", "human"},
                                    absl::Now(), absl::Hours(1));
  ASSERT_TRUE(cert.ok()) << cert.status();
  EXPECT_EQ(UserIdentityFromUris(x509::Parse(*cert)->subject.uris)->user,
            long_user);
}

TEST_F(UserCertificateTest, DeactivatedDirectoryUsersGetNoCertificate) {
  auto* entry = bundle_.add_directory();
  entry->set_user_name("ana.smith");
  entry->add_aliases("ana@example.com");  // matched by e-mail too
  entry->set_active(false);
  entry->set_inactive_because("deactivated by the identity provider (SCIM)");
  auto refused = Issue(IdToken("Ana@Example.com"), csr_);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("is deactivated in Warden's directory: deactivated by "
                        "the identity provider (SCIM)"));
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
              HasSubstr("unverified issuer \"https://idp.test\" is not an "
                        "identity provider"));
  bundle_.clear_identity_providers();
  EXPECT_EQ(Issue(IdToken("ana@example.com"), csr_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(UserCertificateTest, ProxyRefusesOtherUsersOtherCasProxiesAndNoCert) {
  const std::string cert =
      authority_
          ->IssueUser(csr_, {"ana@example.com", {"eng"}, "corp", "human"},
                      absl::Now(), absl::Hours(1))
          .value();
  const std::string ca = authority_->certificate_pem();
  auto refused = [&](const dataplane::session::AuthRequest& r, absl::Time now,
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
      (*other)
          ->IssueUser(csr_, {"ana@example.com", {}, "corp", "human"},
                      absl::Now(), absl::Hours(1))
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
      authority_
          ->IssueUser(csr_, {"ana@example.com", {}, "corp", "human"},
                      absl::Now(), absl::Hours(1))
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

// The identity facts policies see for one person: what the proxy's token
// path derives from a verified token (common/oidc_claims and the provider's
// kind, as dataplane/session/oidc_authenticator does) and what the
// certificate path reads back from the certificate the same token earned.
struct Facts {
  std::string user;
  std::vector<std::string> groups;
  warden::v1::IdentityKind kind;
  bool operator==(const Facts& o) const {
    return user == o.user && groups == o.groups && kind == o.kind;
  }
};

TEST_F(UserCertificateTest, KindSurvivesLoginForEveryProviderKind) {
  const struct {
    const char* provider_kind;  // as pushed; "" = unset
    warden::v1::IdentityKind want;
  } kCases[] = {{"", warden::v1::IDENTITY_KIND_HUMAN},
                {"human", warden::v1::IDENTITY_KIND_HUMAN},
                {"agent", warden::v1::IDENTITY_KIND_AGENT},
                {"service", warden::v1::IDENTITY_KIND_SERVICE}};
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.provider_kind);
    bundle_.mutable_identity_providers(0)->set_kind(c.provider_kind);
    const std::string token = IdToken("bot@example.com");

    // The token as the password: verified claims, mapped, provider's kind.
    const auto& spec = bundle_.identity_providers(0);
    jwt::VerifyOptions options = oidc::VerifyOptionsFromSpec(spec);
    auto claims =
        jwt::Verify(token, jwt::KeySet::FromJwks(spec.jwks()).value(), options);
    ASSERT_TRUE(claims.ok()) << claims.status();
    auto mapped = oidc::MapClaims(*claims, oidc::ClaimRulesFromSpec(spec));
    ASSERT_TRUE(mapped.ok()) << mapped.status();
    const Facts by_token{mapped->user, mapped->groups, c.want};

    // The same token traded for a certificate, which the proxy reads back
    // with the bundle (a proxy of the control plane) and without (policies
    // from files): the same facts both ways.
    auto issued = Issue(token, csr_);
    ASSERT_TRUE(issued.ok()) << issued.status();
    EXPECT_THAT(x509::Parse(issued->certificate_pem())->subject.uris,
                ::testing::Contains(absl::StrCat(
                    "spiffe://warden/kind/",
                    *c.provider_kind ? c.provider_kind : "human")));
    for (const warden::v1::PolicyBundle* bundle :
         {static_cast<const warden::v1::PolicyBundle*>(&bundle_),
          static_cast<const warden::v1::PolicyBundle*>(nullptr)}) {
      AuthStep step = CertAuthenticator::Authenticate(
          Request("bot@example.com", issued->certificate_pem()),
          authority_->certificate_pem(), absl::Now(), bundle);
      ASSERT_EQ(step.state, AuthStep::State::kSuccess) << step.error;
      const Facts by_cert{
          step.identity.user(),
          {step.identity.groups().begin(), step.identity.groups().end()},
          step.identity.kind()};
      EXPECT_TRUE(by_cert == by_token)
          << "certificate: " << by_cert.user << " kind " << by_cert.kind
          << ", token: " << by_token.user << " kind " << by_token.kind;
      EXPECT_EQ(step.identity.kind(), c.want);
      EXPECT_EQ(step.identity.auth_method(), "cert:corp");
    }
  }
}

TEST_F(UserCertificateTest, CertificateWithoutKindIsRefusedNotTakenForHuman) {
  // Signed by Warden's CA, as an older warden-control did: no kind URI.
  const std::string old =
      SignedWithUris({"spiffe://warden/user/ana%40example.com",
                      "spiffe://warden/group/eng", "spiffe://warden/idp/corp"});
  for (const warden::v1::PolicyBundle* bundle :
       {static_cast<const warden::v1::PolicyBundle*>(&bundle_),
        static_cast<const warden::v1::PolicyBundle*>(nullptr)}) {
    AuthStep s = CertAuthenticator::Authenticate(
        Request("ana@example.com", old), authority_->certificate_pem(),
        absl::Now(), bundle);
    EXPECT_EQ(s.state, AuthStep::State::kFailure);
    EXPECT_EQ(s.client_sqlstate, "28000");
    EXPECT_THAT(s.client_error,
                HasSubstr("Warden: certificate refused: certificate serial "));
    EXPECT_THAT(s.client_error,
                HasSubstr("certificate from an older warden-control carries "
                          "no identity kind; run `wardenctl login` again"));
    EXPECT_FALSE(s.error.ok());
    EXPECT_EQ(s.identity.kind(), warden::v1::IDENTITY_KIND_UNSPECIFIED);
  }
  // The same names with a kind are accepted: the kind alone made the
  // difference.
  AuthStep ok = CertAuthenticator::Authenticate(
      Request("ana@example.com",
              SignedWithUris({"spiffe://warden/user/ana%40example.com",
                              "spiffe://warden/group/eng",
                              "spiffe://warden/idp/corp",
                              "spiffe://warden/kind/agent"})),
      authority_->certificate_pem(), absl::Now(), &bundle_);
  EXPECT_EQ(ok.state, AuthStep::State::kFailure);  // corp gives human now
  EXPECT_THAT(ok.client_error,
              HasSubstr("the certificate names kind agent, identity provider "
                        "corp now gives kind human; run `wardenctl login` "
                        "again"));
  bundle_.mutable_identity_providers(0)->set_kind("agent");
  ok = CertAuthenticator::Authenticate(
      Request("ana@example.com",
              SignedWithUris({"spiffe://warden/user/ana%40example.com",
                              "spiffe://warden/group/eng",
                              "spiffe://warden/idp/corp",
                              "spiffe://warden/kind/agent"})),
      authority_->certificate_pem(), absl::Now(), &bundle_);
  ASSERT_EQ(ok.state, AuthStep::State::kSuccess) << ok.error;
  EXPECT_EQ(ok.identity.kind(), warden::v1::IDENTITY_KIND_AGENT);
}

TEST_F(UserCertificateTest, ProviderKindChangedSinceLoginIsRefused) {
  bundle_.mutable_identity_providers(0)->set_kind("agent");
  auto issued = Issue(IdToken("bot@example.com"), csr_);
  ASSERT_TRUE(issued.ok()) << issued.status();
  // The operator reclassifies the provider: its tokens now give humans; a
  // certificate saying agent no longer matches what the token would give.
  bundle_.mutable_identity_providers(0)->set_kind("human");
  AuthStep s = CertAuthenticator::Authenticate(
      Request("bot@example.com", issued->certificate_pem()),
      authority_->certificate_pem(), absl::Now(), &bundle_);
  EXPECT_EQ(s.state, AuthStep::State::kFailure);
  EXPECT_EQ(s.client_sqlstate, "28000");
  EXPECT_THAT(s.client_error, HasSubstr("now gives kind human"));
  EXPECT_EQ(s.method, "cert:corp");
}

TEST_F(UserCertificateTest, UnverifiedIssuerIsLabelledInTheRefusal) {
  // Unsigned, and its issuer tries to start a new line of the audit trail.
  const std::string evil_issuer =
      "https://evil.test\n#9 2024-01-01T00:00:00.000Z prod/p1 #1 root: ALLOW";
  const std::string token = absl::StrCat(
      jt::B64(R"({"alg":"none"})"), ".",
      jt::B64(
          nlohmann::json({{"iss", evil_issuer}, {"email", "root@example.com"}})
              .dump()),
      ".");
  auto refused = Issue(token, csr_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(refused.status().message(),
              HasSubstr(absl::StrCat("token refused: unverified issuer \"",
                                     evil_issuer, "\" is not an identity ")));
  // Only its first 200 bytes are repeated.
  const std::string long_issuer(500, 'i');
  auto long_refused = Issue(
      absl::StrCat(jt::B64(R"({"alg":"none"})"), ".",
                   jt::B64(nlohmann::json({{"iss", long_issuer}}).dump()), "."),
      csr_);
  EXPECT_THAT(long_refused.status().message(),
              HasSubstr(absl::StrCat("\"", std::string(200, 'i'), "...\"")));
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
