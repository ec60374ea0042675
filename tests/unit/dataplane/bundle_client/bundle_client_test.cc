// The proxy's bundle client against a real control plane in the test
// process (gRPC on loopback): verify, apply, persist, ACK/NACK, reconnect,
// last-known-good.
#include "dataplane/bundle_client/bundle_client.h"

#include <sys/stat.h>

#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/x509.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/controlplane/controlplane_fixture.h"

namespace warden::dataplane::bundle_client {
namespace {

using ::testing::HasSubstr;

constexpr char kPolicy[] = R"(apiVersion: warden/v1
kind: Policy
metadata: { name: guard }
spec:
  environments: [prod]
  rules:
    - name: RULE
      match: { commands: [DROP TABLE] }
      action: deny
)";

std::string PolicyWithRule(const std::string& rule) {
  std::string text = kPolicy;
  text.replace(text.find("RULE"), 4, rule);
  return text;
}

// What the proxy would swap in, recorded.
struct Applied {
  absl::Mutex mu;
  uint64_t revision = 0;
  std::string rule;
  int calls = 0;
  absl::Status next_result = absl::OkStatus();
  BundleClient::ApplyFn Fn() {
    return [this](const warden::v1::PolicyBundle& b, uint64_t rev) {
      absl::MutexLock lock(&mu);
      ++calls;
      if (!next_result.ok()) return next_result;
      revision = rev;
      rule = b.policies(0).rules(0).name();
      return absl::OkStatus();
    };
  }
  bool WaitFor(uint64_t rev) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      {
        absl::MutexLock lock(&mu);
        if (revision == rev) return true;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }
};

class BundleClientTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(absl::Hours(24)); }
  void Start(absl::Duration proxy_cert_ttl) {
    const std::string name =
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    cp_ = std::make_unique<controlplane::TestControlPlane>(
        "bundle_client_" + name, proxy_cert_ttl);
    ASSERT_TRUE(cp_->ok());
    key_file_ = cp_->dir() + "/signing.pub";
    std::ofstream(key_file_) << cp_->key().public_pem;
    state_dir_ = cp_->dir() + "/proxy-state";
  }

  // Options for proxy `proxy` of prod, with a fresh bootstrap token for it
  // in a file.
  Options MakeOptions(const std::string& proxy = "p1") {
    Options o;
    o.address = cp_->address();
    o.ca_file = cp_->ca_file();
    o.trusted_key_files = {key_file_};
    o.state_dir = state_dir_;
    o.proxy_id = proxy;
    o.environment = "prod";
    o.bootstrap_token_file = cp_->dir() + "/bootstrap-" + proxy + ".token";
    std::ofstream(o.bootstrap_token_file) << cp_->Bootstrap("prod") << "\n";
    return o;
  }
  std::string Serial() {
    std::ifstream in(state_dir_ + "/proxy.crt");
    std::string pem((std::istreambuf_iterator<char>(in)), {});
    auto cert = x509::Parse(pem);
    return cert.ok() ? cert->serial_hex : "";
  }
  uint64_t Push(const std::string& rule) {
    auto r = cp_->bundles()->Push({{"prod.yaml", PolicyWithRule(rule)}}, "m",
                                  "test", absl::Now(), false);
    EXPECT_TRUE(r.ok()) << r.status();
    cp_->distributor()->Publish();
    return r.ok() ? r->revision : 0;
  }
  const warden::v1::ProxyStatus* Fleet(const std::string& id,
                                       warden::v1::GetFleetStatusResponse* f) {
    *f = cp_->distributor()->FleetStatus("");
    for (const auto& p : f->proxies()) {
      if (p.proxy_id() == id) return &p;
    }
    return nullptr;
  }
  bool WaitFleet(const std::string& id,
                 const std::function<bool(const warden::v1::ProxyStatus&)>& ok) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    warden::v1::GetFleetStatusResponse f;
    while (absl::Now() < deadline) {
      const auto* p = Fleet(id, &f);
      if (p != nullptr && ok(*p)) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  std::unique_ptr<controlplane::TestControlPlane> cp_;
  std::string key_file_;
  std::string state_dir_;
};

TEST_F(BundleClientTest, AppliesPushesAcksAndFollowsNewRevisions) {
  const uint64_t first = Push("no-drop");
  Applied applied;
  auto client = BundleClient::Create(MakeOptions(), applied.Fn());
  ASSERT_TRUE(client.ok()) << client.status();
  (*client)->Start();
  ASSERT_TRUE(applied.WaitFor(first));
  EXPECT_EQ(applied.rule, "no-drop");
  EXPECT_TRUE(WaitFleet("p1", [&](const auto& p) {
    return p.running_revision() == first && p.connected();
  }));
  const uint64_t second = Push("no-drop-v2");
  ASSERT_TRUE(applied.WaitFor(second));
  EXPECT_EQ(applied.rule, "no-drop-v2");
  EXPECT_EQ((*client)->running_revision(), second);
  (*client)->Stop();
}

TEST_F(BundleClientTest, LastKnownGoodServesARestartWithoutTheControlPlane) {
  const uint64_t rev = Push("no-drop");
  {
    Applied applied;
    auto client = BundleClient::Create(MakeOptions(), applied.Fn());
    ASSERT_TRUE(client.ok());
    (*client)->Start();
    ASSERT_TRUE(applied.WaitFor(rev));
  }
  const std::string ca_file = cp_->ca_file();
  cp_.reset();  // the control plane goes away.
  Applied after_restart;
  Options o;
  o.address = "127.0.0.1:1";
  o.ca_file = ca_file;
  o.trusted_key_files = {key_file_};
  o.state_dir = state_dir_;
  o.proxy_id = "p1";
  auto client = BundleClient::Create(o, after_restart.Fn());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->LoadLastKnownGood().ok());
  EXPECT_EQ(after_restart.revision, rev);
  EXPECT_EQ((*client)->running_revision(), rev);
  // Watching an absent control plane keeps the revision in force.
  (*client)->Start();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ((*client)->running_revision(), rev);
  (*client)->Stop();
}

TEST_F(BundleClientTest, TamperedLastKnownGoodIsNotApplied) {
  const uint64_t rev = Push("no-drop");
  {
    Applied applied;
    auto client = BundleClient::Create(MakeOptions(), applied.Fn());
    ASSERT_TRUE(client.ok());
    (*client)->Start();
    ASSERT_TRUE(applied.WaitFor(rev));
  }
  const std::string path = state_dir_ + "/last-known-good.bundle";
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_FALSE(bytes.empty());
  const size_t at = bytes.find("DROP TABLE");
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'd';  // a policy edited on disk.
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  Applied applied;
  auto client = BundleClient::Create(MakeOptions(), applied.Fn());
  ASSERT_TRUE(client.ok());
  const absl::Status loaded = (*client)->LoadLastKnownGood();
  EXPECT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.message(), HasSubstr("last-known-good"));
  EXPECT_EQ(applied.calls, 0);
}

TEST_F(BundleClientTest, UntrustedSignatureIsNackedAndNothingApplied) {
  Push("no-drop");
  auto other = crypto::GenerateEd25519Key();
  ASSERT_TRUE(other.ok());
  const std::string other_file = cp_->dir() + "/other.pub";
  std::ofstream(other_file) << other->public_pem;
  Options o = MakeOptions("p2");
  o.trusted_key_files = {other_file};
  Applied applied;
  auto client = BundleClient::Create(o, applied.Fn());
  ASSERT_TRUE(client.ok());
  (*client)->Start();
  EXPECT_TRUE(WaitFleet("p2", [](const auto& p) {
    return p.nacked_revision() > 0 && !p.last_error().empty();
  }));
  warden::v1::GetFleetStatusResponse f;
  const auto* p = Fleet("p2", &f);
  ASSERT_NE(p, nullptr);
  EXPECT_THAT(p->last_error(), HasSubstr("PERMISSION_DENIED"));
  EXPECT_EQ(p->running_revision(), 0u);
  EXPECT_EQ(applied.calls, 0);
  EXPECT_EQ((*client)->running_revision(), 0u);
  (*client)->Stop();
}

TEST_F(BundleClientTest, ABundleTheProxyCannotUseIsNackedAndNotPersisted) {
  const uint64_t rev = Push("no-drop");
  Applied applied;
  applied.next_result = absl::InvalidArgumentError("cannot compile");
  auto client = BundleClient::Create(MakeOptions("p3"), applied.Fn());
  ASSERT_TRUE(client.ok());
  (*client)->Start();
  EXPECT_TRUE(WaitFleet("p3", [&](const auto& p) {
    return p.nacked_revision() == rev;
  }));
  (*client)->Stop();
  EXPECT_FALSE(std::filesystem::exists(state_dir_ + "/last-known-good.bundle"));
}

TEST_F(BundleClientTest, ConfigurationErrors) {
  Applied applied;
  Options o = MakeOptions();
  o.trusted_key_files.clear();
  EXPECT_THAT(BundleClient::Create(o, applied.Fn()).status().message(),
              HasSubstr("trusted_keys"));
  o = MakeOptions();
  o.ca_file.clear();
  EXPECT_THAT(BundleClient::Create(o, applied.Fn()).status().message(),
              HasSubstr("ca_file is required"));
  o = MakeOptions();
  o.proxy_id = "has space";
  EXPECT_THAT(BundleClient::Create(o, applied.Fn()).status().message(),
              HasSubstr("control_plane.proxy_id must be"));
  o = MakeOptions();
  o.trusted_key_files = {cp_->dir() + "/missing.pub"};
  EXPECT_EQ(BundleClient::Create(o, applied.Fn()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(BundleClientTest, EnrollsOnceThenReusesItsCertificate) {
  const uint64_t rev = Push("no-drop");
  std::string serial;
  {
    Applied applied;
    auto client = BundleClient::Create(MakeOptions(), applied.Fn());
    ASSERT_TRUE(client.ok());
    (*client)->Start();
    ASSERT_TRUE(applied.WaitFor(rev));
    EXPECT_EQ((*client)->proxy_id(), "p1");
    serial = Serial();
    ASSERT_FALSE(serial.empty());
    struct stat st;
    ASSERT_EQ(stat((state_dir_ + "/proxy.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  // Restarted with the (now used) token: the certificate on disk is
  // enough, nothing is re-enrolled.
  Options o = MakeOptions();
  std::ofstream(o.bootstrap_token_file, std::ios::trunc) << "wdn_used\n";
  Applied applied;
  auto client = BundleClient::Create(o, applied.Fn());
  ASSERT_TRUE(client.ok());
  (*client)->Start();
  const uint64_t rev2 = Push("no-drop-2");
  ASSERT_TRUE(applied.WaitFor(rev2));
  EXPECT_EQ(Serial(), serial);
  (*client)->Stop();
}

TEST_F(BundleClientTest, WithoutCertificateOrTokenItNeverWatches) {
  Push("no-drop");
  Options o = MakeOptions();
  o.bootstrap_token_file.clear();
  unsetenv("WARDEN_BOOTSTRAP_TOKEN");
  Applied applied;
  auto client = BundleClient::Create(o, applied.Fn());
  ASSERT_TRUE(client.ok());
  (*client)->Start();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(applied.calls, 0);
  EXPECT_EQ(cp_->distributor()->FleetStatus("").proxies_size(), 0);
  EXPECT_FALSE(std::filesystem::exists(state_dir_ + "/proxy.crt"));
  (*client)->Stop();
}

TEST_F(BundleClientTest, ACertificateForAnotherEnvironmentIsNotUsed) {
  Push("no-drop");
  Options o = MakeOptions();
  o.environment = "dev";  // the token enrolls for prod.
  Applied applied;
  auto client = BundleClient::Create(o, applied.Fn());
  ASSERT_TRUE(client.ok());
  (*client)->Start();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(applied.calls, 0);
  EXPECT_EQ(cp_->distributor()->FleetStatus("").proxies_size(), 0);
  EXPECT_FALSE(std::filesystem::exists(state_dir_ + "/proxy.crt"));
  (*client)->Stop();
}

TEST_F(BundleClientTest, RenewsItsCertificateAndKeepsWatching) {
  cp_.reset();
  Start(absl::Seconds(3));  // renewal due 2 s after issue.
  const uint64_t rev = Push("no-drop");
  Applied applied;
  auto client = BundleClient::Create(MakeOptions(), applied.Fn());
  ASSERT_TRUE(client.ok());
  (*client)->Start();
  ASSERT_TRUE(applied.WaitFor(rev));
  const absl::Time first_expires = absl::Now() + absl::Seconds(3);
  const std::string first = Serial();
  ASSERT_FALSE(first.empty());
  // Renewed: wait for the new certificate rather than for a guess of when.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (Serial() == first && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_NE(Serial(), first);
  // Past the first certificate's expiry, still receiving pushes, which
  // needs a certificate valid now.
  absl::SleepFor(std::max(absl::ZeroDuration(),
                          first_expires + absl::Milliseconds(200) - absl::Now()));
  const uint64_t rev2 = Push("no-drop-2");
  ASSERT_TRUE(applied.WaitFor(rev2));
  EXPECT_TRUE(WaitFleet("p1", [&](const auto& p) {
    return p.connected() && p.running_revision() == rev2;
  }));
  (*client)->Stop();
}

}  // namespace
}  // namespace warden::dataplane::bundle_client
