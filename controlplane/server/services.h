// warden-control's gRPC services (callback API): PolicyService for people
// and CI, TokenService for admins, ProxyEnrollment for proxies. Every RPC
// but ProxyEnrollment.Renew (and BundleDistribution.Watch, in
// controlplane/distribution), which take the proxy's client certificate,
// authenticates a bearer token
// ("authorization: Bearer wdn_...") and checks the scope the request needs
// before doing anything; refusals are UNAUTHENTICATED (no, malformed,
// unknown, revoked or expired token) or PERMISSION_DENIED (wrong scope).
#ifndef WARDEN_CONTROLPLANE_SERVER_SERVICES_H_
#define WARDEN_CONTROLPLANE_SERVER_SERVICES_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/ca/ca.h"
#include "controlplane/directory/directory.h"
#include "controlplane/distribution/distribution.h"
#include "controlplane/proxies/registry.h"
#include "controlplane/tokens/tokens.h"
#include "proto/warden/v1/control.grpc.pb.h"

namespace warden::controlplane::server {

class AdminAudit;  // audit_services.h

// The scope each RPC needs, by its full method name
// ("/warden.v1.PolicyService/PushPolicy"); UNSPECIFIED for unknown methods
// (which are refused).
warden::v1::TokenScope RequiredScope(absl::string_view method);

// The address part of gRPC's peer string ("ipv4:127.0.0.1:5000",
// "ipv6:[::1]:5000"), what failures are counted by.
std::string PeerHost(const std::string& peer);

class ApiRefusals;  // audit_services.h

// Where Authorize reports the calls it refuses (null: nowhere); set once at
// start, before serving, by warden-control.
void SetApiRefusals(ApiRefusals* refusals);

// Authenticates the caller of `context` for `method` (its full name,
// "/warden.v1.PolicyService/PushPolicy"), which needs RequiredScope(method);
// a refusal is reported to SetApiRefusals' recorder with the method.
absl::StatusOr<warden::v1::TokenInfo> Authorize(
    const tokens::Tokens& tokens, const grpc::CallbackServerContext* context,
    absl::string_view method);

class PolicyServiceImpl final
    : public warden::v1::PolicyService::CallbackService {
 public:
  // `distributor` (optional, not owned): told to Publish() after every
  // committed push or rollback, and the source of GetFleetStatus' proxies.
  // `audit` (optional, not owned): pushes and rollbacks are recorded there.
  PolicyServiceImpl(bundles::Bundles* bundles, const tokens::Tokens* tokens,
                    distribution::Distributor* distributor = nullptr,
                    AdminAudit* audit = nullptr)
      : bundles_(bundles),
        tokens_(tokens),
        distributor_(distributor),
        audit_(audit) {}

  grpc::ServerUnaryReactor* PushPolicy(
      grpc::CallbackServerContext* context,
      const warden::v1::PushPolicyRequest* request,
      warden::v1::PushPolicyResponse* response) override;
  grpc::ServerUnaryReactor* GetBundle(
      grpc::CallbackServerContext* context,
      const warden::v1::GetBundleRequest* request,
      warden::v1::GetBundleResponse* response) override;
  grpc::ServerUnaryReactor* ListHistory(
      grpc::CallbackServerContext* context,
      const warden::v1::ListHistoryRequest* request,
      warden::v1::ListHistoryResponse* response) override;
  grpc::ServerUnaryReactor* Rollback(
      grpc::CallbackServerContext* context,
      const warden::v1::RollbackRequest* request,
      warden::v1::RollbackResponse* response) override;
  grpc::ServerUnaryReactor* GetFleetStatus(
      grpc::CallbackServerContext* context,
      const warden::v1::GetFleetStatusRequest* request,
      warden::v1::GetFleetStatusResponse* response) override;

 private:
  // Runs the PolicyTest documents of `sources` against their compiled
  // bundle; failing cases (or broken test documents) go to `diagnostics`
  // unless `skip`. Returns what the push's audit record says about it
  // ("12 policy tests passed", "policy tests skipped: 2 of 12 failing").
  static std::string TestBeforePush(
      const std::vector<policy::lang::SourceFile>& sources, bool skip,
      std::vector<policy::lang::Diagnostic>* diagnostics);

  bundles::Bundles* const bundles_;
  const tokens::Tokens* const tokens_;
  distribution::Distributor* const distributor_;
  AdminAudit* const audit_;
};

class TokenServiceImpl final
    : public warden::v1::TokenService::CallbackService {
 public:
  // With `service_tokens_changed`, called after a db:connect token was
  // created or revoked (warden-control republishes the bundle with it).
  explicit TokenServiceImpl(tokens::Tokens* tokens, AdminAudit* audit = nullptr,
                            std::function<void()> service_tokens_changed = {})
      : tokens_(tokens),
        audit_(audit),
        service_tokens_changed_(std::move(service_tokens_changed)) {}

  grpc::ServerUnaryReactor* CreateToken(
      grpc::CallbackServerContext* context,
      const warden::v1::CreateTokenRequest* request,
      warden::v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(
      grpc::CallbackServerContext* context,
      const warden::v1::ListTokensRequest* request,
      warden::v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* RevokeToken(
      grpc::CallbackServerContext* context,
      const warden::v1::RevokeTokenRequest* request,
      warden::v1::RevokeTokenResponse* response) override;

 private:
  tokens::Tokens* const tokens_;
  AdminAudit* const audit_;
  const std::function<void()> service_tokens_changed_;
};

// ProxyEnrollment: Warden's CA issues proxies their client certificates.
// Enroll takes a one-time bootstrap token (scope proxy:enroll); Renew takes
// the proxy's current certificate (mTLS).
// DirectoryService: `wardenctl identities` lists the directory and cuts any
// user off (or lets them back) at once.
class DirectoryServiceImpl final
    : public warden::v1::DirectoryService::CallbackService {
 public:
  // Not owned. `changed` runs after every committed change (warden-control
  // republishes the bundle with the directory).
  DirectoryServiceImpl(directory::Directory* directory,
                       const tokens::Tokens* tokens, AdminAudit* audit,
                       std::function<void()> changed)
      : directory_(directory),
        tokens_(tokens),
        audit_(audit),
        changed_(std::move(changed)) {}

  grpc::ServerUnaryReactor* ListIdentities(
      grpc::CallbackServerContext* context,
      const warden::v1::ListIdentitiesRequest* request,
      warden::v1::ListIdentitiesResponse* response) override;
  grpc::ServerUnaryReactor* SetIdentityActive(
      grpc::CallbackServerContext* context,
      const warden::v1::SetIdentityActiveRequest* request,
      warden::v1::SetIdentityActiveResponse* response) override;

 private:
  directory::Directory* const directory_;
  const tokens::Tokens* const tokens_;
  AdminAudit* const audit_;
  const std::function<void()> changed_;
};

class ProxyEnrollmentImpl final
    : public warden::v1::ProxyEnrollment::CallbackService {
 public:
  // Not owned. `certificate_ttl`: lifetime of issued proxy certificates.
  ProxyEnrollmentImpl(tokens::Tokens* tokens, const ca::Authority* authority,
                      proxies::Registry* registry,
                      absl::Duration certificate_ttl,
                      AdminAudit* audit = nullptr)
      : tokens_(tokens),
        authority_(authority),
        registry_(registry),
        ttl_(certificate_ttl),
        audit_(audit) {}

  // Renewals end this long after enrollment (0: never): the proxy must then
  // be enrolled again, with a new bootstrap token, so a stolen certificate
  // cannot be kept alive forever by renewing it.
  void set_max_age(absl::Duration max_age) { max_age_ = max_age; }

  grpc::ServerUnaryReactor* Enroll(
      grpc::CallbackServerContext* context,
      const warden::v1::EnrollRequest* request,
      warden::v1::EnrollResponse* response) override;
  grpc::ServerUnaryReactor* Renew(grpc::CallbackServerContext* context,
                                  const warden::v1::RenewRequest* request,
                                  warden::v1::EnrollResponse* response) override;
  grpc::ServerUnaryReactor* ListProxies(
      grpc::CallbackServerContext* context,
      const warden::v1::ListProxiesRequest* request,
      warden::v1::ListProxiesResponse* response) override;
  grpc::ServerUnaryReactor* RevokeProxy(
      grpc::CallbackServerContext* context,
      const warden::v1::RevokeProxyRequest* request,
      warden::v1::RevokeProxyResponse* response) override;

 private:
  // Issues the certificate; its serial (hex) on success.
  absl::StatusOr<std::string> Issue(const std::string& csr_pem,
                                    const ca::ProxyIdentity& identity,
                                    warden::v1::EnrollResponse* response) const;

  tokens::Tokens* const tokens_;
  const ca::Authority* const authority_;
  proxies::Registry* const registry_;
  const absl::Duration ttl_;
  absl::Duration max_age_ = absl::ZeroDuration();
  AdminAudit* const audit_;
};

// The proxy registry as warden-control runs it: an id is in use if the
// registry, the fleet view or the audit log knows it, and `authority`
// refuses (through its enrollment check) any certificate the registry
// does not bind. None is owned; all must outlive the registry.
std::unique_ptr<proxies::Registry> NewProxyRegistry(
    state::StateMachine* state, const store::Store* store,
    const audit::Ledger* ledger, const distribution::Distributor* distributor,
    ca::Authority* authority);

// absl -> gRPC status, code and message preserved.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace warden::controlplane::server

#endif  // WARDEN_CONTROLPLANE_SERVER_SERVICES_H_
