// Authenticates clients by a client certificate from Warden's CA (listeners
// with `auth: cert`; TLS only), the certificate a person gets with
// `wardenctl login` after proving who they are to their identity provider.
// The TLS handshake proved the client holds the certificate's key; here the
// certificate must chain to Warden's CA, be valid now and for clientAuth,
// name a user (common/user_identity; never a proxy), and that user must be
// the one the client connects as. Its groups become the identity's groups,
// its kind (spiffe://warden/kind/..., the kind its provider's tokens give:
// human, agent or service) the identity's kind, and the method is
// "cert:<provider>". No password is asked. A certificate that names no kind
// (issued by a warden-control from before kinds were carried) is refused,
// never taken for a human: "certificate from an older warden-control
// carries no identity kind; run `wardenctl login` again".
// With a policy bundle (proxies of a control plane), the certificate's
// provider must still be one of the bundle's identity providers, accept
// the listener's environment (its `environments` globs), as for tokens, and
// still give the kind the certificate names.
// Refusals are SQLSTATE 28000 "Warden: certificate refused: <why>".
#ifndef WARDEN_DATAPLANE_SESSION_CERT_AUTHENTICATOR_H_
#define WARDEN_DATAPLANE_SESSION_CERT_AUTHENTICATOR_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/x509.h"
#include "dataplane/session/authenticator.h"
#include "proto/warden/v1/policy.pb.h"

namespace warden::dataplane::session {

class CertAuthenticator : public Authenticator {
 public:
  // Warden's CA certificate (PEM) as known now; "" when not yet known (a
  // proxy that has not enrolled). Called once per connection.
  using CaSource = std::function<std::string()>;

  // The policy bundle in force (null before the first, or when policies
  // come from files).
  using BundleSource =
      std::function<std::shared_ptr<const warden::v1::PolicyBundle>()>;

  explicit CertAuthenticator(CaSource ca, BundleSource bundle = nullptr)
      : ca_(std::move(ca)), bundle_(std::move(bundle)) {}
  std::unique_ptr<AuthExchange> Begin(const AuthRequest& request) override;

  // The verdict for `request` against `ca_pem` at `now`, and `bundle`'s
  // providers unless null (what Begin's exchange answers at once).
  static AuthStep Authenticate(const AuthRequest& request,
                               const std::string& ca_pem, absl::Time now,
                               const warden::v1::PolicyBundle* bundle);
  // The same against a CA parsed once (null: the CA is not known yet).
  static AuthStep Authenticate(const AuthRequest& request,
                               const x509::Anchor* ca, absl::Time now,
                               const warden::v1::PolicyBundle* bundle);

 private:
  // Warden's CA parsed, rebuilt only when the source's PEM changes.
  std::shared_ptr<const x509::Anchor> Anchor();

  const CaSource ca_;
  const BundleSource bundle_;
  absl::Mutex mu_;
  std::string anchor_pem_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const x509::Anchor> anchor_ ABSL_GUARDED_BY(mu_);
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_CERT_AUTHENTICATOR_H_
