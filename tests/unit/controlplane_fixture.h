// A whole control plane inside a test process: real RocksDB log and store
// in a fresh temporary folder, the state machine, tokens, bundles signed by
// a key generated for the test, and a real gRPC server on 127.0.0.1:0 with
// PolicyService, TokenService and BundleDistribution.Watch. Tests talk to it
// over gRPC like wardenctl and proxies do.
#ifndef WARDEN_TESTS_UNIT_CONTROLPLANE_FIXTURE_H_
#define WARDEN_TESTS_UNIT_CONTROLPLANE_FIXTURE_H_

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "common/crypto.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/distribution/distribution.h"
#include "controlplane/log/rocksdb_log.h"
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
  explicit TestControlPlane(const std::string& name) {
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
    distributor_ = std::make_unique<distribution::Distributor>(bundles_.get());
    policy_service_ = std::make_unique<server::PolicyServiceImpl>(
        bundles_.get(), tokens_.get(), distributor_.get());
    token_service_ = std::make_unique<server::TokenServiceImpl>(tokens_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(policy_service_.get());
    builder.RegisterService(token_service_.get());
    builder.RegisterService(distributor_.get());
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  ~TestControlPlane() {
    if (server_) server_->Shutdown();
  }

  bool ok() const { return server_ != nullptr; }
  const std::string& address() const { return address_; }
  const std::string& dir() const { return dir_; }
  std::shared_ptr<grpc::Channel> Channel() const {
    return grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  }
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
  std::unique_ptr<distribution::Distributor> distributor_;
  std::unique_ptr<server::PolicyServiceImpl> policy_service_;
  std::unique_ptr<server::TokenServiceImpl> token_service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace warden::controlplane

#endif  // WARDEN_TESTS_UNIT_CONTROLPLANE_FIXTURE_H_
