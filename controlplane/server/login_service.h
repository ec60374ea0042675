// Login: people trade an identity provider's ID token for a short-lived
// client certificate from Warden's CA (`wardenctl login`). No API token:
// the ID token is the proof, verified against the keys and rules of the
// head bundle's identity providers (kind: IdentityProvider), exactly as a
// proxy verifies a token sent as the password (common/jwt,
// common/oidc_claims). The certificate names the user, their groups and the
// provider (common/user_identity); proxies with `auth: cert` listeners
// accept it. Every issue and refusal is an admin audit event
// "identity.certificate"; a flood of refusals from one peer address is
// recorded as its first refusals plus one summary event per minute
// ("identity.certificate.failures"), and a peer that keeps failing is
// refused for the rest of the minute (common/login_failures).
#ifndef WARDEN_CONTROLPLANE_SERVER_LOGIN_SERVICE_H_
#define WARDEN_CONTROLPLANE_SERVER_LOGIN_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/login_failures.h"
#include "common/names.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/ca/ca.h"
#include "proto/warden/v1/control.grpc.pb.h"

namespace warden::controlplane::server {

class AdminAudit;  // audit_services.h

// The certificate a verified token earns, or why not: Unauthenticated
// "token refused: ..." (does not verify, unknown issuer), PermissionDenied
// "token refused: ..." (the provider's claim rules), InvalidArgument (bad
// request), FailedPrecondition (no provider pushed).
// `verified_user` (optional) is set to the user the token names once its
// signature and claims verified, also when the directory then refuses
// them, so a refusal is recorded under who asked.
absl::StatusOr<warden::v1::IssueUserCertificateResponse> IssueUserCertificate(
    const warden::v1::PolicyBundle& bundle, const ca::Authority& authority,
    const warden::v1::IssueUserCertificateRequest& request, absl::Time now,
    absl::Duration ttl, std::string* verified_user = nullptr,
    const LookAlikeIndex* known_names = nullptr);

// The bundle directory's names (userNames, e-mails) by skeleton, for the
// look-alike check of IssueUserCertificate.
LookAlikeIndex DirectoryNames(const warden::v1::PolicyBundle& bundle);

class LoginImpl final : public warden::v1::Login::CallbackService {
 public:
  // Not owned. `certificate_ttl`: lifetime of issued user certificates.
  // `failures`: how refusals per peer address are recorded and limited.
  LoginImpl(const bundles::Bundles* bundles, const ca::Authority* authority,
            absl::Duration certificate_ttl, AdminAudit* audit = nullptr,
            LoginFailures::Options failures = {});
  // Records the summaries of every open window.
  ~LoginImpl() override;
  LoginImpl(const LoginImpl&) = delete;
  LoginImpl& operator=(const LoginImpl&) = delete;

  grpc::ServerUnaryReactor* ListProviders(
      grpc::CallbackServerContext* context,
      const warden::v1::ListProvidersRequest* request,
      warden::v1::ListProvidersResponse* response) override;
  grpc::ServerUnaryReactor* IssueUserCertificate(
      grpc::CallbackServerContext* context,
      const warden::v1::IssueUserCertificateRequest* request,
      warden::v1::IssueUserCertificateResponse* response) override;

 private:
  // The head revision's bundle; FailedPrecondition before the first push.
  absl::StatusOr<warden::v1::PolicyBundle> HeadBundle() const;
  // DirectoryNames of `bundle`, made once per bundle (by digest), not per
  // login.
  std::shared_ptr<const LookAlikeIndex> KnownNames(
      const warden::v1::PolicyBundle& bundle);

  // Records the summaries of windows that ended (all of them at the end).
  void RecordSummaries(bool all);

  const bundles::Bundles* const bundles_;
  const ca::Authority* const authority_;
  const absl::Duration ttl_;
  AdminAudit* const audit_;
  LoginFailures failures_;
  absl::Mutex names_mu_;
  std::string names_digest_ ABSL_GUARDED_BY(names_mu_);
  std::shared_ptr<const LookAlikeIndex> names_ ABSL_GUARDED_BY(names_mu_);
  absl::Notification stop_;
  std::thread summarizer_;  // records ended windows' summaries each second
};

}  // namespace warden::controlplane::server

#endif  // WARDEN_CONTROLPLANE_SERVER_LOGIN_SERVICE_H_
