// Warden's own certificate authority, kept by warden-control: it issues
// each proxy a short-lived client certificate (after the proxy proves a
// one-time bootstrap token, controlplane/server's ProxyEnrollment) and, when
// the operator gives none, warden-control's own server certificate. Proxies
// authenticate Watch and Renew with that certificate (mTLS); its URI SAN
// binds the proxy id and environment, so a proxy cannot report itself as
// another.
//
// It also issues people short-lived client certificates (IssueUser) after
// they proved who they are with an identity provider's token (Login
// service), which proxies with `auth: cert` listeners accept.
//
// Files in the data directory: ca.key (P-256, 0600) and ca.crt (what
// proxies and wardenctl trust). The key never leaves the control plane.
#ifndef WARDEN_CONTROLPLANE_CA_CA_H_
#define WARDEN_CONTROLPLANE_CA_CA_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/proxy_identity.h"
#include "common/user_identity.h"
#include "common/x509.h"

namespace grpc {
class AuthContext;
}

namespace warden::controlplane::ca {

// Who a proxy certificate names (common/proxy_identity).
using ::warden::ProxyIdentity;

class Authority {
 public:
  // LoadOrCreate reads DIR/ca.key and DIR/ca.crt, or creates both (a P-256
  // key and a self-signed CA certificate valid for 10 years).
  static absl::StatusOr<std::unique_ptr<Authority>> LoadOrCreate(
      const std::string& dir);
  // FromPem uses an existing CA (tests, or an operator-provided CA).
  static absl::StatusOr<std::unique_ptr<Authority>> FromPem(
      std::string certificate_pem, std::string key_pem);

  const std::string& certificate_pem() const { return certificate_pem_; }

  // IssueProxy signs the public key of `csr_pem` (whose self-signature must
  // verify) as `identity`'s client certificate, valid for `ttl`.
  absl::StatusOr<std::string> IssueProxy(absl::string_view csr_pem,
                                         const ProxyIdentity& identity,
                                         absl::Time now,
                                         absl::Duration ttl) const;

  // IssueUser signs the public key of `csr_pem` (whose self-signature must
  // verify) as a person's client certificate (`wardenctl login`): CN = the
  // user (its first 64 bytes: X.509's limit), the URI SANs of
  // common/user_identity (user, groups, provider), clientAuth, valid for
  // `ttl`. InvalidArgument for a bad request or an empty user or provider.
  absl::StatusOr<std::string> IssueUser(absl::string_view csr_pem,
                                        const UserIdentity& identity,
                                        absl::Time now,
                                        absl::Duration ttl) const;

  // IssueServer signs a fresh server certificate (and returns its key)
  // for the given names, valid for `ttl`.
  struct KeyAndCertificate {
    std::string key_pem;
    std::string certificate_pem;
  };
  absl::StatusOr<KeyAndCertificate> IssueServer(
      const std::vector<std::string>& dns, const std::vector<std::string>& ips,
      absl::Time now, absl::Duration ttl) const;

  // Decides whether a proxy's certificate is still the one its id is
  // bound to (not revoked, not replaced): set once by warden-control
  // (controlplane/proxies), before serving. The status it returns is
  // the refusal.
  using EnrollmentCheck =
      std::function<absl::Status(const ProxyIdentity& identity)>;
  void SetEnrollmentCheck(EnrollmentCheck check) {
    enrollment_check_ = std::move(check);
  }

  // AuthenticateProxy checks a certificate presented by a peer: it must
  // chain to this CA, be valid at `now`, name a proxy and pass the
  // enrollment check. Unauthenticated (or the check's refusal) with the
  // reason otherwise.
  //
  // Every call of a proxy presents the same certificate, and decoding one
  // costs OpenSSL 3 hundreds of microseconds; so the signature check's
  // result is remembered per certificate (its exact bytes, at most
  // kMaxVerified of them). What depends on the moment is checked on every
  // call: the validity periods of the certificate and of the CA, and the
  // enrollment check (revocation, replacement).
  absl::StatusOr<ProxyIdentity> AuthenticateProxy(absl::string_view cert_pem,
                                                  absl::Time now) const;

  // AuthenticatePeer does the same for the client certificate of a gRPC
  // call (TLS already verified the chain; this re-checks and reads the
  // identity). Unauthenticated when the call carries no certificate.
  absl::StatusOr<ProxyIdentity> AuthenticatePeer(
      const grpc::AuthContext& auth, absl::Time now) const;

  // Certificates whose signature check AuthenticateProxy remembers.
  static constexpr size_t kMaxVerified = 10000;
  // How many it remembers now (tests).
  size_t verified_certificates() const;

 private:
  Authority(std::string certificate_pem, std::string key_pem,
            std::shared_ptr<const x509::Anchor> anchor,
            absl::Time ca_not_before, absl::Time ca_not_after)
      : certificate_pem_(std::move(certificate_pem)),
        key_pem_(std::move(key_pem)),
        anchor_(std::move(anchor)),
        ca_not_before_(ca_not_before),
        ca_not_after_(ca_not_after) {}

  // A certificate that chained to this CA, and the window in which it
  // and the CA are both valid.
  struct Verified {
    x509::Certificate certificate;
    absl::Time valid_from;
    absl::Time valid_until;
  };
  absl::StatusOr<x509::Certificate> VerifiedCertificate(
      absl::string_view cert_pem, absl::Time now) const;

  const std::string certificate_pem_;
  const std::string key_pem_;
  const std::shared_ptr<const x509::Anchor> anchor_;
  const absl::Time ca_not_before_;
  const absl::Time ca_not_after_;
  EnrollmentCheck enrollment_check_;
  mutable absl::Mutex verified_mu_;
  mutable absl::flat_hash_map<std::string, Verified> verified_
      ABSL_GUARDED_BY(verified_mu_);
};

}  // namespace warden::controlplane::ca

#endif  // WARDEN_CONTROLPLANE_CA_CA_H_
