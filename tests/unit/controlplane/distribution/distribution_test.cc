// BundleDistribution.Watch over a real gRPC server on loopback, with real
// client streams: hello/ACK/NACK, pushes reaching connected proxies, stale
// nonces, latest-wins while a bundle is in flight, fleet status through
// PolicyService.GetFleetStatus, and every one of many watchers getting a push.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/x509.h"
#include "controlplane/ca/ca.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/distribution/distribution.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/server/services.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "controlplane/tokens/tokens.h"
#include "tests/unit/controlplane/controlplane_fixture.h"
#include "gtest/gtest.h"
#include "policy/bundle/bundle.h"

namespace warden::controlplane {
namespace {

using warden::v1::WatchRequest;
using warden::v1::WatchResponse;
using Stream = grpc::ClientReaderWriter<WatchRequest, WatchResponse>;

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

// A proxy's end of one Watch stream (sync client API).
struct Watcher {
  std::unique_ptr<warden::v1::BundleDistribution::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream;

  bool Hello(const std::string& id, const std::string& env, uint64_t running,
             bool heartbeats = false) {
    WatchRequest req;
    req.mutable_hello()->set_proxy_id(id);
    req.mutable_hello()->set_environment(env);
    req.mutable_hello()->set_running_revision(running);
    req.mutable_hello()->set_heartbeats(heartbeats);
    return stream->Write(req);
  }
  bool Ack(const std::string& nonce, uint64_t revision) {
    WatchRequest req;
    req.mutable_ack()->set_nonce(nonce);
    req.mutable_ack()->set_revision(revision);
    return stream->Write(req);
  }
  bool Nack(const std::string& nonce, uint64_t revision,
            const std::string& error) {
    WatchRequest req;
    req.mutable_nack()->set_nonce(nonce);
    req.mutable_nack()->set_revision(revision);
    req.mutable_nack()->set_error(error);
    return stream->Write(req);
  }
};

class DistributionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cp_ = std::make_unique<TestControlPlane>(
        std::string("distribution_") +
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(cp_->ok());
    trusted_ = cp_->trusted();
    distributor_ = cp_->distributor();
    channel_ = cp_->Channel();
    policy_ = warden::v1::PolicyService::NewStub(channel_);
    bearer_ = "Bearer " + cp_->Mint({warden::v1::TOKEN_SCOPE_POLICY_WRITE,
                                     warden::v1::TOKEN_SCOPE_POLICY_READ});
  }

  // Pushes a policy whose rule is named `rule` through PolicyService (so
  // the service calls Publish); returns the new revision.
  uint64_t Push(const std::string& rule) {
    warden::v1::PushPolicyRequest push;
    auto* src = push.add_sources();
    src->set_name("prod.yaml");
    src->set_text(absl::StrReplaceAll(kPolicy, {{"RULE", rule}}));
    warden::v1::PushPolicyResponse pushed;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", bearer_);
    const grpc::Status s = policy_->PushPolicy(&ctx, push, &pushed);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(pushed.diagnostics().empty());
    EXPECT_FALSE(pushed.unchanged());
    return pushed.revision();
  }

  // A Watch stream over its own mTLS connection, with a certificate the
  // CA issued for proxy `id` of `env`.
  std::unique_ptr<Watcher> Open(const std::string& id = "p1",
                                const std::string& env = "prod") {
    auto w = std::make_unique<Watcher>();
    w->stub = warden::v1::BundleDistribution::NewStub(
        cp_->ProxyChannel(id, env, ++channels_));
    w->stream = w->stub->Watch(&w->ctx);
    return w;
  }

  warden::v1::GetFleetStatusResponse Fleet(const std::string& env = "") {
    warden::v1::GetFleetStatusRequest req;
    req.set_environment(env);
    warden::v1::GetFleetStatusResponse resp;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", bearer_);
    EXPECT_TRUE(policy_->GetFleetStatus(&ctx, req, &resp).ok());
    return resp;
  }

  // Polls the fleet view (in process) until `pred` holds; 10 s at most.
  bool WaitFleet(
      const std::function<bool(const warden::v1::GetFleetStatusResponse&)>&
          pred) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (pred(distributor_->FleetStatus(""))) return true;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return false;
  }
  static const warden::v1::ProxyStatus* Find(
      const warden::v1::GetFleetStatusResponse& f, const std::string& id) {
    for (const auto& p : f.proxies()) {
      if (p.proxy_id() == id) return &p;
    }
    return nullptr;
  }
  // p1 was sent `revision` and runs nothing yet; once it ACKs `got`, it
  // runs it.
  void ExpectSentThenRunning(Watcher* w, const WatchResponse& got,
                             uint64_t revision) {
    ASSERT_TRUE(WaitFleet([&](const auto& f) {
      const auto* p = Find(f, "p1");
      return p && p->connected() && p->sent_revision() == revision;
    }));
    EXPECT_EQ(Find(distributor_->FleetStatus(""), "p1")->running_revision(),
              0u);
    ASSERT_TRUE(w->Ack(got.nonce(), revision));
    ASSERT_TRUE(WaitRunning("p1", revision));
  }
  bool WaitRunning(const std::string& id, uint64_t revision) {
    return WaitFleet([&](const auto& f) {
      const auto* p = Find(f, id);
      return p != nullptr && p->running_revision() == revision;
    });
  }

  std::unique_ptr<TestControlPlane> cp_;
  int channels_ = 0;
  policy::bundle::TrustedKeys trusted_;
  distribution::Distributor* distributor_ = nullptr;
  std::string bearer_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<warden::v1::PolicyService::Stub> policy_;
};

TEST_F(DistributionTest, HelloGetsVerifiableHeadAckShowsInFleet) {
  const uint64_t rev = Push("no-drop");
  auto w = Open();
  ASSERT_TRUE(w->Hello("p1", "prod", 0));
  WatchResponse got;
  ASSERT_TRUE(w->stream->Read(&got));
  EXPECT_FALSE(got.nonce().empty());
  EXPECT_EQ(got.bundle().revision(), rev);
  EXPECT_TRUE(policy::bundle::VerifyBundle(got.bundle(), trusted_, 0).ok());
  ExpectSentThenRunning(w.get(), got, rev);
  // Also through the RPC the fleet view uses.
  const auto fleet = Fleet();
  EXPECT_EQ(fleet.current_revision(), rev);
  ASSERT_EQ(fleet.proxies_size(), 1);
  EXPECT_EQ(fleet.proxies(0).environment(), "prod");
  EXPECT_EQ(fleet.proxies(0).running_revision(), rev);
  EXPECT_TRUE(fleet.proxies(0).connected());
  EXPECT_TRUE(fleet.proxies(0).has_last_seen());
  w->ctx.TryCancel();
}

// F8: a stream whose hello asks for heartbeats gets one right after the
// hello (behind the head bundle) and then every interval, naming the head;
// one that does not ask (a proxy that predates them would NACK each) gets
// none.
TEST_F(DistributionTest, HeartbeatsOnlyToStreamsThatAskForThem) {
  const uint64_t rev = Push("no-drop");
  auto quiet = Open("p1");
  ASSERT_TRUE(quiet->Hello("p1", "prod", 0));
  WatchResponse got;
  ASSERT_TRUE(quiet->stream->Read(&got));
  EXPECT_EQ(got.bundle().revision(), rev);
  EXPECT_FALSE(got.has_heartbeat());
  ASSERT_TRUE(quiet->Ack(got.nonce(), rev));
  ASSERT_TRUE(WaitRunning("p1", rev));

  const uint64_t before = distributor_->heartbeats_sent();
  auto w = Open("p2");
  ASSERT_TRUE(w->Hello("p2", "prod", 0, /*heartbeats=*/true));
  ASSERT_TRUE(w->stream->Read(&got));
  EXPECT_EQ(got.bundle().revision(), rev);
  const std::string nonce = got.nonce();
  WatchResponse beat;
  ASSERT_TRUE(w->stream->Read(&beat));  // the first, behind the bundle.
  ASSERT_TRUE(beat.has_heartbeat());
  EXPECT_FALSE(beat.has_bundle());
  EXPECT_TRUE(beat.nonce().empty());
  EXPECT_EQ(beat.heartbeat().head_revision(), rev);
  EXPECT_EQ(beat.heartbeat().interval_ms(),
            absl::ToInt64Milliseconds(
                distribution::Distributor::kHeartbeatInterval));
  ASSERT_TRUE(w->Ack(nonce, rev));
  // The next one within the interval (and some slack).
  const absl::Time start = absl::Now();
  ASSERT_TRUE(w->stream->Read(&beat));
  EXPECT_TRUE(beat.has_heartbeat());
  EXPECT_EQ(beat.heartbeat().head_revision(), rev);
  EXPECT_LT(absl::Now() - start,
            distribution::Distributor::kHeartbeatInterval + absl::Seconds(2));
  EXPECT_GE(distributor_->heartbeats_sent(), before + 2);
  // A heartbeat is not answered, and not counted as a stale response.
  EXPECT_EQ(distributor_->stale_responses(), 0u);

  // The quiet stream got nothing since its bundle: cancel it, and its
  // next read is the end, not a heartbeat.
  quiet->ctx.TryCancel();
  EXPECT_FALSE(quiet->stream->Read(&got));
  w->ctx.TryCancel();
}

// Red team pass 8: a hello claiming a revision this control plane never
// made was shown as what the proxy runs, and `policy push --wait` counted
// the proxy as caught up with every later push.
TEST_F(DistributionTest, AClaimedRevisionPastTheHeadIsNotBelieved) {
  const uint64_t rev = Push("no-drop");
  auto w = Open();
  ASSERT_TRUE(w->Hello("p1", "prod", 1000000000000ull));
  WatchResponse got;
  ASSERT_TRUE(w->stream->Read(&got));
  EXPECT_EQ(got.bundle().revision(), rev);  // it gets the head
  ExpectSentThenRunning(w.get(), got, rev);
  w->ctx.TryCancel();
}

TEST_F(DistributionTest, PushWhileConnectedArrivesUnasked) {
  auto w = Open();
  ASSERT_TRUE(w->Hello("p1", "prod", 0));  // nothing pushed: nothing sent.
  ASSERT_TRUE(WaitFleet([&](const auto& f) { return Find(f, "p1"); }));
  const uint64_t rev = Push("no-drop");
  WatchResponse got;
  ASSERT_TRUE(w->stream->Read(&got));
  EXPECT_EQ(got.bundle().revision(), rev);
  ASSERT_TRUE(w->Ack(got.nonce(), rev));
  ASSERT_TRUE(WaitRunning("p1", rev));
  const uint64_t rev2 = Push("no-drop-2");
  ASSERT_TRUE(w->stream->Read(&got));
  EXPECT_EQ(got.bundle().revision(), rev2);
  EXPECT_EQ(got.bundle().parent_revision(), rev);
  EXPECT_TRUE(policy::bundle::VerifyBundle(got.bundle(), trusted_, rev).ok());
  w->ctx.TryCancel();
}

TEST_F(DistributionTest, NackRecordsErrorAndKeepsOldRevision) {
  const uint64_t rev = Push("no-drop");
  auto w = Open();
  ASSERT_TRUE(w->Hello("p1", "prod", 0));
  WatchResponse got;
  ASSERT_TRUE(w->stream->Read(&got));
  ASSERT_TRUE(w->Ack(got.nonce(), rev));
  ASSERT_TRUE(WaitRunning("p1", rev));
  const uint64_t rev2 = Push("no-drop-2");
  ASSERT_TRUE(w->stream->Read(&got));
  ASSERT_EQ(got.bundle().revision(), rev2);
  ASSERT_TRUE(w->Nack(got.nonce(), rev2, "signature does not verify"));
  ASSERT_TRUE(WaitFleet([&](const auto& f) {
    const auto* p = Find(f, "p1");
    return p && p->nacked_revision() == rev2;
  }));
  const auto fleet = Fleet();
  const auto* p = Find(fleet, "p1");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->running_revision(), rev);
  EXPECT_EQ(p->last_error(), "signature does not verify");
  // A later ACKed revision clears the NACK.
  const uint64_t rev3 = Push("no-drop-3");
  ASSERT_TRUE(w->stream->Read(&got));
  ASSERT_EQ(got.bundle().revision(), rev3);
  ASSERT_TRUE(w->Ack(got.nonce(), rev3));
  ASSERT_TRUE(WaitRunning("p1", rev3));
  const auto after = distributor_->FleetStatus("");
  p = Find(after, "p1");
  EXPECT_EQ(p->nacked_revision(), 0u);
  EXPECT_EQ(p->last_error(), "");
  w->ctx.TryCancel();
}

TEST_F(DistributionTest, HelloAtHeadGetsNothingUntilNextPush) {
  const uint64_t rev = Push("no-drop");
  auto w = Open();
  ASSERT_TRUE(w->Hello("p1", "prod", rev));
  ASSERT_TRUE(WaitRunning("p1", rev));
  const uint64_t rev2 = Push("no-drop-2");
  WatchResponse got;
  ASSERT_TRUE(w->stream->Read(&got));
  EXPECT_EQ(got.bundle().revision(), rev2);  // rev was never sent.
  w->ctx.TryCancel();
}

TEST_F(DistributionTest, FirstMessageMustBeHello) {
  Push("no-drop");
  auto w = Open();
  ASSERT_TRUE(w->Ack("n1", 1));
  w->stream->WritesDone();
  const grpc::Status s = w->stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "first message must be hello");
  EXPECT_EQ(distributor_->FleetStatus("").proxies_size(), 0);
}

TEST_F(DistributionTest, StaleNonceIsIgnored) {
  const uint64_t rev = Push("no-drop");
  auto w = Open();
  ASSERT_TRUE(w->Hello("p1", "prod", 0));
  WatchResponse got;
  ASSERT_TRUE(w->stream->Read(&got));
  ASSERT_TRUE(w->Ack("not-" + got.nonce(), rev));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (distributor_->stale_responses() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_EQ(distributor_->stale_responses(), 1u);
  EXPECT_EQ(Find(distributor_->FleetStatus(""), "p1")->running_revision(), 0u);
  ASSERT_TRUE(w->Ack(got.nonce(), rev));
  ASSERT_TRUE(WaitRunning("p1", rev));
  // Answering the same nonce twice: the second one is stale.
  ASSERT_TRUE(w->Nack(got.nonce(), rev, "late"));
  while (distributor_->stale_responses() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_EQ(distributor_->stale_responses(), 2u);
  EXPECT_EQ(Find(distributor_->FleetStatus(""), "p1")->nacked_revision(), 0u);
  w->ctx.TryCancel();
}

TEST_F(DistributionTest, OneInFlightPerStreamLatestWins) {
  const uint64_t rev = Push("no-drop");
  auto w = Open();
  ASSERT_TRUE(w->Hello("p1", "prod", 0));
  WatchResponse got;
  ASSERT_TRUE(w->stream->Read(&got));
  ASSERT_EQ(got.bundle().revision(), rev);
  // Two pushes while rev is unanswered: only the newest is sent, after the
  // ACK.
  Push("no-drop-2");
  const uint64_t rev3 = Push("no-drop-3");
  ASSERT_TRUE(w->Ack(got.nonce(), rev));
  WatchResponse next;
  ASSERT_TRUE(w->stream->Read(&next));
  EXPECT_EQ(next.bundle().revision(), rev3);
  EXPECT_NE(next.nonce(), got.nonce());
  ASSERT_TRUE(w->Ack(next.nonce(), rev3));
  ASSERT_TRUE(WaitRunning("p1", rev3));
  w->ctx.TryCancel();
}

TEST_F(DistributionTest, TwoProxiesBothGetPushSortedFleetAndDisconnect) {
  const uint64_t rev = Push("no-drop");
  auto a = Open("p2");
  auto b = Open("p1");
  auto c = Open("z", "dev");
  ASSERT_TRUE(a->Hello("p2", "prod", rev));
  ASSERT_TRUE(b->Hello("p1", "prod", rev));
  ASSERT_TRUE(c->Hello("z", "dev", rev));
  ASSERT_TRUE(WaitFleet([](const auto& f) { return f.proxies_size() == 3; }));
  const uint64_t rev2 = Push("no-drop-2");
  for (Watcher* w : {a.get(), b.get()}) {
    WatchResponse got;
    ASSERT_TRUE(w->stream->Read(&got));
    EXPECT_EQ(got.bundle().revision(), rev2);
    ASSERT_TRUE(w->Ack(got.nonce(), rev2));
  }
  ASSERT_TRUE(WaitRunning("p1", rev2));
  ASSERT_TRUE(WaitRunning("p2", rev2));
  auto fleet = Fleet();
  ASSERT_EQ(fleet.proxies_size(), 3);
  EXPECT_EQ(fleet.proxies(0).environment() + "/" + fleet.proxies(0).proxy_id(),
            "dev/z");
  EXPECT_EQ(fleet.proxies(1).environment() + "/" + fleet.proxies(1).proxy_id(),
            "prod/p1");
  EXPECT_EQ(fleet.proxies(2).environment() + "/" + fleet.proxies(2).proxy_id(),
            "prod/p2");
  EXPECT_EQ(Fleet("prod").proxies_size(), 2);
  EXPECT_EQ(Fleet("dev").proxies_size(), 1);

  // b closes cleanly, a is cancelled: both stay listed, disconnected.
  b->stream->WritesDone();
  EXPECT_TRUE(b->stream->Finish().ok());
  a->ctx.TryCancel();
  a->stream->Finish();
  ASSERT_TRUE(WaitFleet([](const auto& f) {
    return f.proxies_size() == 3 && !f.proxies(1).connected() &&
           !f.proxies(2).connected() && f.proxies(0).connected();
  }));
  fleet = Fleet("prod");
  ASSERT_EQ(fleet.proxies_size(), 2);
  EXPECT_EQ(fleet.proxies(0).running_revision(), rev2);
  c->ctx.TryCancel();
  c->stream->Finish();
  ASSERT_TRUE(WaitFleet([&](const auto&) {
    return distributor_->open_streams() == 0;
  }));
}

// Every watcher gets a push. How fast a fleet gets it is measured with
// real processes by tests/bench/fleet.py (--watchers 500), not here.
TEST_F(DistributionTest, EveryWatcherGetsThePush) {
  constexpr int kWatchers = 20;
  const uint64_t rev = Push("no-drop");
  std::vector<std::unique_ptr<Watcher>> watchers;
  std::atomic<int> acked{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWatchers; ++i) {
    watchers.push_back(Open(absl::StrCat("proxy-", i)));
    Watcher* w = watchers.back().get();
    ASSERT_TRUE(w->Hello(absl::StrCat("proxy-", i), "prod", rev));
    threads.emplace_back([w, &acked] {
      WatchResponse got;
      while (w->stream->Read(&got)) {
        w->Ack(got.nonce(), got.bundle().revision());
        acked.fetch_add(1);
      }
      w->stream->Finish();
    });
  }
  ASSERT_TRUE(WaitFleet([&](const auto& f) {
    int connected = 0;
    for (const auto& p : f.proxies()) connected += p.connected() ? 1 : 0;
    return connected == kWatchers;
  }));
  const uint64_t rev2 = Push("no-drop-2");
  ASSERT_TRUE(WaitFleet([&](const auto& f) {
    int running = 0;
    for (const auto& p : f.proxies()) {
      running += p.running_revision() == rev2 ? 1 : 0;
    }
    return running == kWatchers;
  }));
  EXPECT_EQ(acked.load(), kWatchers);
  for (auto& w : watchers) w->ctx.TryCancel();
  for (auto& t : threads) t.join();
}

TEST_F(DistributionTest, WatchWithoutClientCertificateIsUnauthenticated) {
  Push("no-drop");
  auto stub = warden::v1::BundleDistribution::NewStub(cp_->Channel());
  grpc::ClientContext ctx;
  auto stream = stub->Watch(&ctx);
  WatchRequest hello;
  hello.mutable_hello()->set_proxy_id("p1");
  hello.mutable_hello()->set_environment("prod");
  stream->Write(hello);
  WatchResponse got;
  EXPECT_FALSE(stream->Read(&got));
  const grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("no client certificate"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(distributor_->FleetStatus("").proxies_size(), 0);
}

TEST_F(DistributionTest, HelloMustNameTheCertificatesProxy) {
  Push("no-drop");
  for (const auto& [id, env] :
       std::vector<std::pair<std::string, std::string>>{{"p2", "prod"},
                                                        {"p1", "dev"}}) {
    auto w = Open("p1", "prod");
    ASSERT_TRUE(w->Hello(id, env, 0));
    WatchResponse got;
    EXPECT_FALSE(w->stream->Read(&got));
    const grpc::Status s = w->stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(s.error_message().find(
                  "the client certificate names proxy \"p1\" of environment "
                  "\"prod\""),
              std::string::npos)
        << s.error_message();
  }
  EXPECT_EQ(distributor_->FleetStatus("").proxies_size(), 0);
}

TEST_F(DistributionTest, CertificateFromAnotherCaIsRefusedAtTheHandshake) {
  Push("no-drop");
  // A CA of the same name and shape, but not Warden's: its certificate
  // names p1 of prod exactly like a real one.
  auto other_key = x509::GenerateKey();
  ASSERT_TRUE(other_key.ok());
  auto other_cert = x509::MakeSelfSignedCa(*other_key, {"Warden CA", {}, {}, {}},
                                           absl::Now(), absl::Hours(1));
  ASSERT_TRUE(other_cert.ok());
  auto other = ca::Authority::FromPem(*other_cert, *other_key);
  ASSERT_TRUE(other.ok());
  auto key = x509::GenerateKey();
  auto csr = x509::MakeRequest(*key, "p1");
  auto forged =
      (*other)->IssueProxy(*csr, {"p1", "prod"}, absl::Now(), absl::Hours(1));
  ASSERT_TRUE(forged.ok());
  auto stub = warden::v1::BundleDistribution::NewStub(
      cp_->ChannelWith(*key, *forged, 999));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->Watch(&ctx);
  WatchRequest hello;
  hello.mutable_hello()->set_proxy_id("p1");
  hello.mutable_hello()->set_environment("prod");
  stream->Write(hello);
  WatchResponse got;
  EXPECT_FALSE(stream->Read(&got));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(distributor_->FleetStatus("").proxies_size(), 0);
}

TEST_F(DistributionTest, FleetViewSurvivesARestart) {
  const uint64_t rev = Push("no-drop");
  auto w = Open();
  ASSERT_TRUE(w->Hello("p1", "prod", 0));
  WatchResponse got;
  ASSERT_TRUE(w->stream->Read(&got));
  ASSERT_TRUE(w->Ack(got.nonce(), rev));
  ASSERT_TRUE(WaitRunning("p1", rev));
  // A second distributor over the same store: what warden-control builds
  // after a restart.
  distribution::Distributor restarted(cp_->bundles(), cp_->authority(),
                                      cp_->store());
  const auto fleet = restarted.FleetStatus("");
  ASSERT_EQ(fleet.proxies_size(), 1);
  EXPECT_EQ(fleet.proxies(0).proxy_id(), "p1");
  EXPECT_EQ(fleet.proxies(0).environment(), "prod");
  EXPECT_EQ(fleet.proxies(0).running_revision(), rev);
  EXPECT_FALSE(fleet.proxies(0).connected());  // not to this process.
  EXPECT_GT(fleet.proxies(0).last_seen().seconds(), 0);
  w->ctx.TryCancel();
}

}  // namespace
}  // namespace warden::controlplane
