#include "controlplane/ca/ca.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "common/x509.h"
#include "gtest/gtest.h"

namespace warden::controlplane::ca {
namespace {

std::unique_ptr<Authority> NewAuthority(absl::Time now,
                                        absl::Duration validity) {
  auto key = x509::GenerateKey();
  EXPECT_TRUE(key.ok());
  auto cert = x509::MakeSelfSignedCa(*key, {"Warden CA", {}, {}, {}}, now,
                                     validity);
  EXPECT_TRUE(cert.ok());
  auto authority = Authority::FromPem(*cert, *key);
  EXPECT_TRUE(authority.ok()) << authority.status();
  return *std::move(authority);
}

std::string ProxyCertificate(const Authority& authority, absl::Time now,
                             absl::Duration ttl,
                             const std::string& id = "edge-1") {
  auto key = x509::GenerateKey();
  auto csr = x509::MakeRequest(*key, "whatever");
  auto cert = authority.IssueProxy(*csr, ProxyIdentity{id, "prod"}, now, ttl);
  EXPECT_TRUE(cert.ok()) << cert.status();
  return *cert;
}

TEST(AuthorityTest, AuthenticatesAProxyCertificateAndRemembersTheCheck) {
  const absl::Time now = absl::Now();
  auto authority = NewAuthority(now, absl::Hours(24 * 365));
  const std::string cert = ProxyCertificate(*authority, now, absl::Hours(24));
  EXPECT_EQ(authority->verified_certificates(), 0u);
  for (int i = 0; i < 3; ++i) {
    auto identity = authority->AuthenticateProxy(cert, now + absl::Minutes(i));
    ASSERT_TRUE(identity.ok()) << identity.status();
    EXPECT_EQ(identity->proxy_id, "edge-1");
    EXPECT_EQ(identity->environment, "prod");
    EXPECT_EQ(identity->certificate_serial, x509::Parse(cert)->serial_hex);
  }
  EXPECT_EQ(authority->verified_certificates(), 1u);
}

TEST(AuthorityTest, ARememberedCertificateIsStillRefusedOutsideItsValidity) {
  const absl::Time now = absl::Now();
  auto authority = NewAuthority(now, absl::Hours(24 * 365));
  const std::string cert = ProxyCertificate(*authority, now, absl::Hours(1));
  ASSERT_TRUE(authority->AuthenticateProxy(cert, now).ok());
  ASSERT_EQ(authority->verified_certificates(), 1u);
  const absl::Status expired =
      authority->AuthenticateProxy(cert, now + absl::Hours(2)).status();
  EXPECT_EQ(expired.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(expired.message().find("expired"), absl::string_view::npos)
      << expired;
  const absl::Status early =
      authority->AuthenticateProxy(cert, now - absl::Hours(2)).status();
  EXPECT_EQ(early.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(early.message().find("not yet valid"), absl::string_view::npos)
      << early;
  // And valid again inside it.
  EXPECT_TRUE(authority->AuthenticateProxy(cert, now + absl::Minutes(30)).ok());
}

TEST(AuthorityTest, ACertificateOutlivingTheCaIsRefusedOnceTheCaExpires) {
  const absl::Time now = absl::Now();
  auto authority = NewAuthority(now, absl::Hours(2));
  const std::string cert = ProxyCertificate(*authority, now, absl::Hours(24));
  ASSERT_TRUE(authority->AuthenticateProxy(cert, now).ok());
  EXPECT_EQ(authority->AuthenticateProxy(cert, now + absl::Hours(3))
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(AuthorityTest, RefusesCertificatesOfAnotherCaAndAlteredOnes) {
  const absl::Time now = absl::Now();
  auto authority = NewAuthority(now, absl::Hours(24 * 365));
  auto other = NewAuthority(now, absl::Hours(24 * 365));
  const std::string foreign = ProxyCertificate(*other, now, absl::Hours(24));
  EXPECT_EQ(authority->AuthenticateProxy(foreign, now).status().code(),
            absl::StatusCode::kUnauthenticated);
  ASSERT_TRUE(other->AuthenticateProxy(foreign, now).ok());
  // The same bytes the other CA accepted: still refused here.
  EXPECT_EQ(authority->AuthenticateProxy(foreign, now).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(authority->verified_certificates(), 0u);

  // A certificate of this CA with one byte of its signature changed.
  std::string cert = ProxyCertificate(*authority, now, absl::Hours(24));
  ASSERT_TRUE(authority->AuthenticateProxy(cert, now).ok());
  const size_t end = cert.find("-----END");
  ASSERT_NE(end, std::string::npos);
  // The last base64 characters before the footer encode the signature.
  size_t at = end - 1;
  while (cert[at] == '\n' || cert[at] == '=') --at;
  at -= 4;
  cert[at] = cert[at] == 'A' ? 'B' : 'A';
  EXPECT_EQ(authority->AuthenticateProxy(cert, now).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(authority->verified_certificates(), 1u);
}

TEST(AuthorityTest, TheEnrollmentCheckRunsOnEveryCall) {
  const absl::Time now = absl::Now();
  auto authority = NewAuthority(now, absl::Hours(24 * 365));
  const std::string cert = ProxyCertificate(*authority, now, absl::Hours(24));
  int checks = 0;
  bool revoked = false;
  authority->SetEnrollmentCheck([&](const ProxyIdentity& identity) {
    ++checks;
    EXPECT_EQ(identity.proxy_id, "edge-1");
    return revoked ? absl::PermissionDeniedError("revoked") : absl::OkStatus();
  });
  ASSERT_TRUE(authority->AuthenticateProxy(cert, now).ok());
  ASSERT_TRUE(authority->AuthenticateProxy(cert, now).ok());
  revoked = true;
  EXPECT_EQ(authority->AuthenticateProxy(cert, now).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(checks, 3);
}

TEST(AuthorityTest, ACertificateNamingNoProxyIsRefused) {
  const absl::Time now = absl::Now();
  auto authority = NewAuthority(now, absl::Hours(24 * 365));
  auto server = authority->IssueServer({"localhost"}, {}, now, absl::Hours(1));
  ASSERT_TRUE(server.ok());
  const absl::Status s =
      authority->AuthenticateProxy(server->certificate_pem, now).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("not a Warden proxy certificate"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace warden::controlplane::ca
