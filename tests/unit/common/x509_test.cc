#include "common/x509.h"

#include "common/address.h"

#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace warden::x509 {
namespace {

struct Ca {
  std::string key;
  std::string cert;
};

Ca MakeCa(const std::string& name) {
  Ca ca;
  auto key = GenerateKey();
  EXPECT_TRUE(key.ok()) << key.status();
  ca.key = *key;
  auto cert = MakeSelfSignedCa(ca.key, {name, {}, {}, {}}, absl::Now(),
                               absl::Hours(24 * 365));
  EXPECT_TRUE(cert.ok()) << cert.status();
  ca.cert = *cert;
  return ca;
}

TEST(X509Test, IssuesAClientCertificateFromARequest) {
  const Ca ca = MakeCa("Warden test CA");
  auto key = GenerateKey();
  ASSERT_TRUE(key.ok());
  auto csr = MakeRequest(*key, "ignored-by-the-ca");
  ASSERT_TRUE(csr.ok()) << csr.status();
  auto pub = RequestPublicKey(*csr);
  ASSERT_TRUE(pub.ok()) << pub.status();
  const absl::Time now = absl::Now();
  Subject subject{"proxy-a", {"spiffe://warden/proxy/prod/proxy-a"}, {}, {}};
  auto cert = Issue(ca.cert, ca.key, *pub, subject, Usage::kClientAuth, now,
                    absl::Hours(24));
  ASSERT_TRUE(cert.ok()) << cert.status();

  auto parsed = Parse(*cert);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->subject.common_name, "proxy-a");
  EXPECT_EQ(parsed->issuer_common_name, "Warden test CA");
  ASSERT_EQ(parsed->subject.uris.size(), 1u);
  EXPECT_EQ(parsed->subject.uris[0], "spiffe://warden/proxy/prod/proxy-a");
  EXPECT_EQ(parsed->serial_hex.size(), 32u);
  EXPECT_LE(parsed->not_before, now);
  EXPECT_GT(parsed->not_after, now + absl::Hours(23));
  EXPECT_LE(parsed->not_after, now + absl::Hours(24) + absl::Seconds(1));
  EXPECT_EQ(parsed->public_key_pem, *pub);
  EXPECT_TRUE(KeyMatchesCertificate(*key, *cert));

  EXPECT_TRUE(Verify(*cert, ca.cert, now).ok());
  // Outside its validity.
  EXPECT_EQ(Verify(*cert, ca.cert, now + absl::Hours(25)).code(),
            absl::StatusCode::kPermissionDenied);
  // Another CA does not vouch for it.
  const Ca other = MakeCa("Other CA");
  auto wrong = Verify(*cert, other.cert, now);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(wrong.message().find("does not verify"), std::string::npos);
  // Another key does not match it.
  auto other_key = GenerateKey();
  ASSERT_TRUE(other_key.ok());
  EXPECT_FALSE(KeyMatchesCertificate(*other_key, *cert));
}

TEST(X509Test, AnAnchorVerifiesAndParsesLikeVerifyAndParse) {
  const Ca ca = MakeCa("Warden test CA");
  auto anchor = Anchor::FromPem(ca.cert);
  ASSERT_TRUE(anchor.ok()) << anchor.status();
  auto key = GenerateKey();
  ASSERT_TRUE(key.ok());
  const absl::Time now = absl::Now();
  auto cert = Issue(ca.cert, ca.key, *RequestPublicKey(*MakeRequest(*key, "x")),
                    {"ana", {"spiffe://warden/user/ana"}, {}, {}},
                    Usage::kClientAuth, now, absl::Hours(1));
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto got = (*anchor)->VerifyAndParse(*cert, now, Purpose::kClientAuth);
  ASSERT_TRUE(got.ok()) << got.status();
  auto want = Parse(*cert);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(got->subject.common_name, want->subject.common_name);
  EXPECT_EQ(got->subject.uris, want->subject.uris);
  EXPECT_EQ(got->serial_hex, want->serial_hex);
  EXPECT_EQ(got->not_after, want->not_after);
  EXPECT_TRUE(got->public_key_pem.empty());
  // The anchor is reused: expired, foreign and garbage certificates fail
  // as Verify says, and a good one still passes after them.
  EXPECT_EQ((*anchor)
                ->VerifyAndParse(*cert, now + absl::Hours(2),
                                 Purpose::kClientAuth)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  const Ca other = MakeCa("Other CA");
  EXPECT_EQ((*anchor)->VerifyAndParse(other.cert, now, Purpose::kAny)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE((*anchor)->VerifyAndParse("garbage", now, Purpose::kAny).ok());
  EXPECT_TRUE(
      (*anchor)->VerifyAndParse(*cert, now, Purpose::kClientAuth).ok());
  EXPECT_FALSE(Anchor::FromPem("not a certificate").ok());
}

TEST(X509Test, ServerCertificateCarriesIpAndDnsNames) {
  const Ca ca = MakeCa("Warden test CA");
  auto key = GenerateKey();
  ASSERT_TRUE(key.ok());
  auto csr = MakeRequest(*key, "");
  ASSERT_TRUE(csr.ok());
  auto pub = RequestPublicKey(*csr);
  ASSERT_TRUE(pub.ok());
  Subject subject{"warden-control", {}, {"localhost"}, {"127.0.0.1", "::1"}};
  auto cert = Issue(ca.cert, ca.key, *pub, subject, Usage::kServerAuth,
                    absl::Now(), absl::Hours(1));
  ASSERT_TRUE(cert.ok()) << cert.status();
  auto parsed = Parse(*cert);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->subject.dns, std::vector<std::string>{"localhost"});
  ASSERT_EQ(parsed->subject.ips.size(), 2u);
  EXPECT_EQ(parsed->subject.ips[0], "127.0.0.1");
  EXPECT_EQ(parsed->subject.ips[1], "::1");
  EXPECT_FALSE(Issue(ca.cert, ca.key, *pub, {"x", {}, {}, {"not-an-ip"}},
                     Usage::kServerAuth, absl::Now(), absl::Hours(1))
                   .ok());
}

TEST(X509Test, IssuedCertificatesNeverOutliveTheCa) {
  auto key = GenerateKey();
  ASSERT_TRUE(key.ok());
  const absl::Time now = absl::Now();
  auto ca_cert = MakeSelfSignedCa(*key, {"short CA", {}, {}, {}}, now,
                                  absl::Hours(2));
  ASSERT_TRUE(ca_cert.ok());
  auto leaf_key = GenerateKey();
  auto pub = RequestPublicKey(*MakeRequest(*leaf_key, "x"));
  ASSERT_TRUE(pub.ok());
  auto cert = Issue(*ca_cert, *key, *pub, {"leaf", {}, {}, {}},
                    Usage::kClientAuth, now, absl::Hours(100));
  ASSERT_TRUE(cert.ok());
  EXPECT_LE(Parse(*cert)->not_after, Parse(*ca_cert)->not_after);
}

TEST(X509Test, RejectsMalformedAndTamperedInput) {
  EXPECT_EQ(RequestPublicKey("garbage").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse("-----BEGIN CERTIFICATE-----\nAAAA\n-----END "
                  "CERTIFICATE-----\n")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  auto key = GenerateKey();
  ASSERT_TRUE(key.ok());
  auto csr = MakeRequest(*key, "tamper-me-please");
  ASSERT_TRUE(csr.ok());
  // Flip one character inside the base64 body: either the PEM no longer
  // decodes or the self-signature fails; both are refused.
  std::string bad = *csr;
  const size_t body = bad.find('\n') + 40;
  bad[body] = bad[body] == 'A' ? 'B' : 'A';
  EXPECT_EQ(RequestPublicKey(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeRequest("not a key", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// warden-control sorts --tls-san values into IP and DNS names with this.
TEST(X509Test, IpAddressesAreToldFromNames) {
  EXPECT_TRUE(IsIpAddress("127.0.0.1"));
  EXPECT_TRUE(IsIpAddress("10.20.30.40"));
  EXPECT_TRUE(IsIpAddress("::1"));
  EXPECT_TRUE(IsIpAddress("fd00::7"));
  EXPECT_FALSE(IsIpAddress("localhost"));
  EXPECT_FALSE(IsIpAddress("warden-control.warden.svc"));
  EXPECT_FALSE(IsIpAddress("127.0.0.1:7443"));
  EXPECT_FALSE(IsIpAddress("[::1]"));
  EXPECT_FALSE(IsIpAddress(""));
}

}  // namespace
}  // namespace warden::x509
