#include "controlplane/ca/ca.h"

#include <grpcpp/security/auth_context.h>
#include <sys/stat.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/files.h"
#include "common/x509.h"

namespace warden::controlplane::ca {
namespace {

constexpr absl::Duration kCaValidity = absl::Hours(24 * 365 * 10);

}  // namespace

absl::StatusOr<std::unique_ptr<Authority>> Authority::LoadOrCreate(
    const std::string& dir) {
  const std::string key_path = dir + "/ca.key";
  const std::string cert_path = dir + "/ca.crt";
  auto key = ReadFile(key_path);
  auto cert = ReadFile(cert_path);
  if (key.ok() && cert.ok()) return FromPem(*std::move(cert), *std::move(key));
  if (key.ok() != cert.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "only one of ", key_path, " and ", cert_path,
        " exists; restore the other or remove both to create a new CA (every "
        "proxy then needs a new bootstrap token)"));
  }
  auto new_key = x509::GenerateKey();
  if (!new_key.ok()) return new_key.status();
  auto new_cert = x509::MakeSelfSignedCa(
      *new_key, {"Warden CA", {}, {}, {}}, absl::Now(), kCaValidity);
  if (!new_cert.ok()) return new_cert.status();
  if (auto s = WriteFileDurably(key_path, *new_key); !s.ok()) return s;
  if (auto s = WriteFileDurably(cert_path, *new_cert); !s.ok()) return s;
  chmod(cert_path.c_str(), 0644);
  return FromPem(*std::move(new_cert), *std::move(new_key));
}

absl::StatusOr<std::unique_ptr<Authority>> Authority::FromPem(
    std::string certificate_pem, std::string key_pem) {
  if (!x509::KeyMatchesCertificate(key_pem, certificate_pem)) {
    return absl::InvalidArgumentError(
        "the CA key does not match the CA certificate");
  }
  auto anchor = x509::Anchor::FromPem(certificate_pem);
  if (!anchor.ok()) return anchor.status();
  auto ca = x509::Parse(certificate_pem);
  if (!ca.ok()) return ca.status();
  return std::unique_ptr<Authority>(
      new Authority(std::move(certificate_pem), std::move(key_pem),
                    *std::move(anchor), ca->not_before, ca->not_after));
}

absl::StatusOr<std::string> Authority::IssueProxy(
    absl::string_view csr_pem, const ProxyIdentity& identity, absl::Time now,
    absl::Duration ttl) const {
  if (auto s = ValidateProxyName("proxy id", identity.proxy_id); !s.ok()) return s;
  if (auto s = ValidateProxyName("environment", identity.environment); !s.ok()) {
    return s;
  }
  std::vector<std::string> uris = {ProxyUri(identity)};
  for (const std::string& env : identity.also_serves) {
    if (auto s = ValidateProxyName("environment", env); !s.ok()) return s;
    if (env != identity.environment) uris.push_back(ProxyServesUri(env));
  }
  auto public_key = x509::RequestPublicKey(csr_pem);
  if (!public_key.ok()) return public_key.status();
  return x509::Issue(certificate_pem_, key_pem_, *public_key,
                     {identity.proxy_id, std::move(uris), {}, {}},
                     x509::Usage::kClientAuth, now, ttl);
}

absl::StatusOr<std::string> Authority::IssueUser(
    absl::string_view csr_pem, const UserIdentity& identity, absl::Time now,
    absl::Duration ttl) const {
  if (identity.user.empty() || identity.provider.empty()) {
    return absl::InvalidArgumentError(
        "a user certificate needs a user and an identity provider");
  }
  // Proxies refuse a user certificate without a kind: never issue one.
  if (!IsIdentityKind(identity.kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a user certificate needs an identity kind (human, agent or "
        "service), not '",
        identity.kind, "'"));
  }
  for (const auto& g : identity.groups) {
    if (g.empty()) return absl::InvalidArgumentError("an empty group name");
  }
  auto public_key = x509::RequestPublicKey(csr_pem);
  if (!public_key.ok()) return public_key.status();
  std::string common_name = identity.user;
  if (common_name.size() > 64) {  // cut whole UTF-8 characters only
    size_t n = 64;
    while (n > 0 && (static_cast<unsigned char>(common_name[n]) & 0xC0) == 0x80) {
      --n;
    }
    common_name.resize(n);
  }
  return x509::Issue(certificate_pem_, key_pem_, *public_key,
                     {std::move(common_name), UserUris(identity), {}, {}},
                     x509::Usage::kClientAuth, now, ttl);
}

absl::StatusOr<Authority::KeyAndCertificate> Authority::IssueServer(
    const std::vector<std::string>& dns, const std::vector<std::string>& ips,
    absl::Time now, absl::Duration ttl) const {
  auto key = x509::GenerateKey();
  if (!key.ok()) return key.status();
  auto csr = x509::MakeRequest(*key, "warden-control");
  if (!csr.ok()) return csr.status();
  auto public_key = x509::RequestPublicKey(*csr);
  if (!public_key.ok()) return public_key.status();
  auto cert = x509::Issue(certificate_pem_, key_pem_, *public_key,
                          {"warden-control", {}, dns, ips},
                          x509::Usage::kServerAuth, now, ttl);
  if (!cert.ok()) return cert.status();
  return KeyAndCertificate{*std::move(key), *std::move(cert)};
}

absl::StatusOr<x509::Certificate> Authority::VerifiedCertificate(
    absl::string_view cert_pem, absl::Time now) const {
  {
    absl::MutexLock lock(&verified_mu_);
    auto it = verified_.find(cert_pem);
    if (it != verified_.end() && it->second.valid_from <= now &&
        now <= it->second.valid_until) {
      return it->second.certificate;
    }
  }
  // Not seen, or outside its window: OpenSSL decides (and says why not).
  auto cert = anchor_->VerifyAndParse(cert_pem, now, x509::Purpose::kAny);
  if (!cert.ok()) return cert.status();
  Verified verified{*cert, std::max(cert->not_before, ca_not_before_),
                    std::min(cert->not_after, ca_not_after_)};
  absl::MutexLock lock(&verified_mu_);
  if (verified_.size() >= kMaxVerified &&
      verified_.find(cert_pem) == verified_.end()) {
    verified_.erase(verified_.begin());  // any one: bounded, never all
  }
  verified_.insert_or_assign(std::string(cert_pem), std::move(verified));
  return cert;
}

size_t Authority::verified_certificates() const {
  absl::MutexLock lock(&verified_mu_);
  return verified_.size();
}

absl::StatusOr<ProxyIdentity> Authority::AuthenticateProxy(
    absl::string_view cert_pem, absl::Time now) const {
  auto cert = VerifiedCertificate(cert_pem, now);
  if (!cert.ok()) return absl::UnauthenticatedError(cert.status().message());
  auto identity = ProxyIdentityFromUris(cert->subject.uris);
  if (identity.ok()) {
    identity->certificate_serial = cert->serial_hex;
    if (enrollment_check_) {
      if (absl::Status s = enrollment_check_(*identity); !s.ok()) return s;
    }
    return identity;
  }
  return absl::UnauthenticatedError(absl::StrCat(
      "certificate ", cert->subject.common_name,
      " (serial ", cert->serial_hex, ") is not a Warden proxy certificate"));
}

absl::StatusOr<ProxyIdentity> Authority::AuthenticatePeer(
    const grpc::AuthContext& auth, absl::Time now) const {
  const auto pems = auth.FindPropertyValues("x509_pem_cert");
  if (pems.empty()) {
    return absl::UnauthenticatedError(
        "no client certificate: proxies authenticate with the certificate "
        "Warden's CA issued them (ProxyEnrollment.Enroll with a bootstrap "
        "token)");
  }
  return AuthenticateProxy(absl::string_view(pems[0].data(), pems[0].size()),
                           now);
}

}  // namespace warden::controlplane::ca
