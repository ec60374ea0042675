// A whole control plane inside a test process: real RocksDB log and store
// in a fresh temporary folder, the state machine, tokens, bundles signed by
// a key generated for the test, Warden's CA (made in the folder), and a real
// gRPC server over TLS on 127.0.0.1:0 with PolicyService, TokenService,
// ProxyEnrollment and BundleDistribution.Watch, asking for client
// certificates from that CA like warden-control does. Tests talk to it over
// gRPC like wardenctl and proxies do.
#ifndef WARDEN_TESTS_UNIT_CONTROLPLANE_FIXTURE_H_
#define WARDEN_TESTS_UNIT_CONTROLPLANE_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/x509.h"
#include "controlplane/ca/ca.h"
#include "controlplane/audit/checkpointer.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/directory/directory.h"
#include "controlplane/distribution/distribution.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/server/audit_services.h"
#include "controlplane/server/services.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "controlplane/tokens/tokens.h"
#include "gtest/gtest.h"
#include "policy/bundle/bundle.h"

namespace warden::controlplane {

class TestControlPlane {
 public:
  // `name` keeps the temporary folder apart from other tests'.
  // `proxy_cert_ttl`: lifetime of the certificates Enroll/Renew issue.
  explicit TestControlPlane(const std::string& name,
                            absl::Duration proxy_cert_ttl = absl::Hours(24)) {
    dir_ = ::testing::TempDir() + "/" + name;
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto key = crypto::GenerateEd25519Key();
    EXPECT_TRUE(key.ok()) << key.status();
    if (key.ok()) key_ = *key;
    EXPECT_TRUE(policy::bundle::AddTrustedKey(key_.public_pem, &trusted_).ok());
    auto log = log::RocksDbLog::Open(dir_ + "/log");
    auto store = store::Store::Open(dir_ + "/state");
    EXPECT_TRUE(log.ok()) << log.status();
    EXPECT_TRUE(store.ok()) << store.status();
    if (!log.ok() || !store.ok()) return;
    log_ = std::move(*log);
    store_ = std::move(*store);
    state_ = std::make_unique<state::StateMachine>(log_.get(), store_.get());
    tokens_ = std::make_unique<tokens::Tokens>(state_.get(), store_.get());
    bundles_ = std::make_unique<bundles::Bundles>(
        state_.get(), store_.get(), bundles::SigningKey{key_.private_pem});
    auto authority = ca::Authority::LoadOrCreate(dir_);
    EXPECT_TRUE(authority.ok()) << authority.status();
    if (!authority.ok()) return;
    authority_ = std::move(*authority);
    distributor_ = std::make_unique<distribution::Distributor>(
        bundles_.get(), authority_.get(), store_.get());

    ledger_ = std::make_unique<audit::Ledger>(store_.get());
    auto audit_key = crypto::GenerateEd25519Key();
    EXPECT_TRUE(audit_key.ok());
    audit_key_ = *audit_key;
    auto checkpointer =
        audit::Checkpointer::Create(ledger_.get(), audit_key_.private_pem);
    EXPECT_TRUE(checkpointer.ok()) << checkpointer.status();
    if (!checkpointer.ok()) return;
    checkpointer_ = std::move(*checkpointer);
    audit_ingest_ = std::make_unique<server::AuditIngestImpl>(
        state_.get(), ledger_.get(), authority_.get());
    admin_audit_ = std::make_unique<server::AdminAudit>(audit_ingest_.get());
    policy_service_ = std::make_unique<server::PolicyServiceImpl>(
        bundles_.get(), tokens_.get(), distributor_.get(), admin_audit_.get());
    token_service_ = std::make_unique<server::TokenServiceImpl>(
        tokens_.get(), admin_audit_.get());
    proxy_registry_ = server::NewProxyRegistry(
        state_.get(), store_.get(), ledger_.get(), distributor_.get(),
        authority_.get());
    enrollment_ = std::make_unique<server::ProxyEnrollmentImpl>(
        tokens_.get(), authority_.get(), proxy_registry_.get(), proxy_cert_ttl,
        admin_audit_.get());
    directory_ =
        std::make_unique<directory::Directory>(state_.get(), store_.get());
    directory_service_ = std::make_unique<server::DirectoryServiceImpl>(
        directory_.get(), tokens_.get(), admin_audit_.get(), nullptr);
    audit_log_ = std::make_unique<server::AuditLogImpl>(
        tokens_.get(), ledger_.get(), checkpointer_.get());
    audit_export_ = std::make_unique<server::AuditExportImpl>(
        tokens_.get(), ledger_.get(), checkpointer_.get());
    auto server_cert = authority_->IssueServer({"localhost"}, {"127.0.0.1"},
                                               absl::Now(), absl::Hours(1));
    EXPECT_TRUE(server_cert.ok()) << server_cert.status();
    if (!server_cert.ok()) return;
    grpc::SslServerCredentialsOptions tls(
        GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    tls.pem_root_certs = authority_->certificate_pem();
    tls.pem_key_cert_pairs.push_back(
        {server_cert->key_pem, server_cert->certificate_pem});
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(tls),
                             &port);
    builder.RegisterService(policy_service_.get());
    builder.RegisterService(token_service_.get());
    builder.RegisterService(enrollment_.get());
    builder.RegisterService(directory_service_.get());
    builder.RegisterService(audit_ingest_.get());
    builder.RegisterService(audit_log_.get());
    builder.RegisterService(audit_export_.get());
    builder.RegisterService(distributor_.get());
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  ~TestControlPlane() {
    if (server_) server_->Shutdown();
    if (checkpointer_) checkpointer_->Stop();
  }

  bool ok() const { return server_ != nullptr; }
  const std::string& address() const { return address_; }
  const std::string& dir() const { return dir_; }
  // TLS, verifying the server against the CA, without a client
  // certificate (wardenctl's kind of channel).
  std::shared_ptr<grpc::Channel> Channel() const {
    return ChannelWith("", "");
  }
  // mTLS with the given client key and certificate (PEM).
  std::shared_ptr<grpc::Channel> ChannelWith(const std::string& key_pem,
                                             const std::string& cert_pem,
                                             int distinct = 0) const {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = authority_->certificate_pem();
    ssl.pem_private_key = key_pem;
    ssl.pem_cert_chain = cert_pem;
    grpc::ChannelArguments args;
    args.SetInt("warden.test.distinct", distinct);  // separate connections
    return grpc::CreateCustomChannel(address_, grpc::SslCredentials(ssl),
                                     args);
  }
  // A key and certificate the CA issued for a proxy.
  struct ProxyCredentials {
    std::string key_pem;
    std::string cert_pem;
  };
  ProxyCredentials IssueProxy(const std::string& proxy_id,
                              const std::string& environment,
                              absl::Duration ttl = absl::Hours(1)) const {
    ProxyCredentials out;
    auto key = x509::GenerateKey();
    EXPECT_TRUE(key.ok());
    auto csr = x509::MakeRequest(*key, proxy_id);
    EXPECT_TRUE(csr.ok());
    auto cert = authority_->IssueProxy(*csr, {proxy_id, environment},
                                       absl::Now(), ttl);
    EXPECT_TRUE(cert.ok()) << cert.status();
    out.key_pem = *key;
    out.cert_pem = cert.ok() ? *cert : "";
    return out;
  }
  // mTLS as proxy `proxy_id` of `environment`.
  std::shared_ptr<grpc::Channel> ProxyChannel(const std::string& proxy_id,
                                              const std::string& environment,
                                              int distinct = 0) const {
    const ProxyCredentials c = IssueProxy(proxy_id, environment);
    return ChannelWith(c.key_pem, c.cert_pem, distinct);
  }
  // A one-time proxy:enroll token for `environment` (and `proxy_id`).
  std::string Bootstrap(const std::string& environment,
                        const std::string& proxy_id = "") {
    auto t = tokens_->CreateBootstrap("boot", environment, proxy_id,
                                      absl::Hours(1), "test", absl::Now());
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->token : "";
  }
  // Where the CA certificate is, for clients that read it from a file.
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  // A fresh token with `scopes`.
  std::string Mint(const std::vector<warden::v1::TokenScope>& scopes,
                   absl::Duration ttl = absl::ZeroDuration()) {
    auto t = tokens_->Create("t", scopes, ttl, "test", absl::Now());
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->token : "";
  }

  const crypto::Ed25519KeyPair& key() const { return key_; }
  const policy::bundle::TrustedKeys& trusted() const { return trusted_; }
  log::RocksDbLog* log() { return log_.get(); }
  store::Store* store() { return store_.get(); }
  state::StateMachine* state() { return state_.get(); }
  tokens::Tokens* tokens() { return tokens_.get(); }
  bundles::Bundles* bundles() { return bundles_.get(); }
  distribution::Distributor* distributor() { return distributor_.get(); }
  const ca::Authority* authority() const { return authority_.get(); }
  audit::Ledger* ledger() { return ledger_.get(); }
  proxies::Registry* proxy_registry() { return proxy_registry_.get(); }
  audit::Checkpointer* checkpointer() { return checkpointer_.get(); }
  server::AuditIngestImpl* audit_ingest() { return audit_ingest_.get(); }
  server::ProxyEnrollmentImpl* enrollment() { return enrollment_.get(); }
  const crypto::Ed25519KeyPair& audit_key() const { return audit_key_; }

 private:
  std::string dir_;
  std::string address_;
  crypto::Ed25519KeyPair key_;
  policy::bundle::TrustedKeys trusted_;
  std::unique_ptr<log::RocksDbLog> log_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<state::StateMachine> state_;
  std::unique_ptr<tokens::Tokens> tokens_;
  std::unique_ptr<bundles::Bundles> bundles_;
  std::unique_ptr<ca::Authority> authority_;
  std::unique_ptr<distribution::Distributor> distributor_;
  std::unique_ptr<server::PolicyServiceImpl> policy_service_;
  std::unique_ptr<server::TokenServiceImpl> token_service_;
  std::unique_ptr<proxies::Registry> proxy_registry_;
  std::unique_ptr<server::ProxyEnrollmentImpl> enrollment_;
  std::unique_ptr<directory::Directory> directory_;
  std::unique_ptr<server::DirectoryServiceImpl> directory_service_;
  crypto::Ed25519KeyPair audit_key_;
  std::unique_ptr<audit::Ledger> ledger_;
  std::unique_ptr<audit::Checkpointer> checkpointer_;
  std::unique_ptr<server::AuditIngestImpl> audit_ingest_;
  std::unique_ptr<server::AdminAudit> admin_audit_;
  std::unique_ptr<server::AuditLogImpl> audit_log_;
  std::unique_ptr<server::AuditExportImpl> audit_export_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace warden::controlplane

#endif  // WARDEN_TESTS_UNIT_CONTROLPLANE_FIXTURE_H_
