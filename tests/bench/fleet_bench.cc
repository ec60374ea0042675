// Load generator for the control plane's distribution: enrolls N proxies
// (a bootstrap token each, created with the admin token, then
// ProxyEnrollment.Enroll with a fresh P-256 key), opens one Watch stream per
// proxy over its own mTLS connection (as N proxies would), then pushes a
// policy K times and measures, per push, the time until every stream has
// received the new revision and ACKed it. Prints JSON lines.
//
//   fleet_bench --server 127.0.0.1:7443 --ca ca.pem --token-file admin.token \
//       --watchers 500 --pushes 20
// tests/bench/fleet.py runs it against a fresh warden-control and also
// reads the server's memory per watcher.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "tests/bench/enroll.h"
#include "proto/warden/v1/control.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shared {
  absl::Mutex mu;
  std::map<uint64_t, int> acked;  // revision -> streams that ACKed it.
  int connected = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fleet_bench: Watch load generator"};
  std::string server, ca, token_file;
  int watchers = 500, pushes = 20;
  app.add_option("--server", server)->required();
  app.add_option("--ca", ca)->required();
  app.add_option("--token-file", token_file)->required();
  app.add_option("--watchers", watchers);
  app.add_option("--pushes", pushes);
  CLI11_PARSE(app, argc, argv);

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = warden::bench::ReadTrimmed(ca) + "\n";
  auto admin_channel = grpc::CreateChannel(server, grpc::SslCredentials(ssl));
  const std::string token = "Bearer " + warden::bench::ReadTrimmed(token_file);

  // Enrollment: what each new proxy does once.
  std::vector<std::shared_ptr<grpc::Channel>> chans;
  const auto enroll_start = Clock::now();
  for (int i = 0; i < watchers; ++i) {
    auto channel = warden::bench::EnrollProxy(
        admin_channel, token, server, ssl.pem_root_certs,
        "bench-" + std::to_string(i), "bench", i);
    if (!channel.ok()) {
      std::cerr << "proxy " << i << ": " << channel.status() << "\n";
      return 1;
    }
    chans.push_back(*std::move(channel));
  }
  const double enroll_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - enroll_start)
          .count();
  Shared shared;
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts(watchers);
  std::vector<std::thread> threads;
  for (int i = 0; i < watchers; ++i) {
    contexts[i] = std::make_unique<grpc::ClientContext>();
    threads.emplace_back([&, i] {
      auto stub = warden::v1::BundleDistribution::NewStub(chans[i]);
      auto stream = stub->Watch(contexts[i].get());
      warden::v1::WatchRequest hello;
      hello.mutable_hello()->set_proxy_id("bench-" + std::to_string(i));
      hello.mutable_hello()->set_environment("bench");
      if (!stream->Write(hello)) return;
      {
        absl::MutexLock lock(&shared.mu);
        ++shared.connected;
      }
      warden::v1::WatchResponse got;
      while (!stop && stream->Read(&got)) {
        warden::v1::WatchRequest ack;
        ack.mutable_ack()->set_nonce(got.nonce());
        ack.mutable_ack()->set_revision(got.bundle().revision());
        if (!stream->Write(ack)) break;
        absl::MutexLock lock(&shared.mu);
        ++shared.acked[got.bundle().revision()];
      }
    });
  }
  // Wait until every stream said hello.
  for (int waited = 0; waited < 600; ++waited) {
    {
      absl::MutexLock lock(&shared.mu);
      if (shared.connected == watchers) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Let the server register the hellos before measuring.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::cout << "{\"watchers\": " << watchers << ", \"connected\": "
            << shared.connected << ", \"enroll_ms_total\": " << enroll_ms
            << ", \"enroll_ms_each\": " << enroll_ms / std::max(1, watchers)
            << ", \"ready\": true}" << std::endl;
  // The driver reads the server's memory now; wait for its go.
  std::string go;
  std::getline(std::cin, go);

  auto policy = warden::v1::PolicyService::NewStub(admin_channel);
  std::vector<double> millis;
  for (int k = 0; k < pushes; ++k) {
    warden::v1::PushPolicyRequest req;
    auto* src = req.add_sources();
    src->set_name("bench.yaml");
    src->set_text(
        "apiVersion: warden/v1\nkind: Policy\nmetadata: { name: bench }\n"
        "spec:\n  environments: [bench]\n  rules:\n    - name: r" +
        std::to_string(k) +
        "\n      match: { commands: [DROP TABLE] }\n      action: deny\n");
    warden::v1::PushPolicyResponse resp;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", token);
    const auto t0 = Clock::now();
    const grpc::Status s = policy->PushPolicy(&ctx, req, &resp);
    if (!s.ok() || resp.revision() == 0) {
      std::cerr << "push failed: " << s.error_message() << "\n";
      return 1;
    }
    bool done = false;
    for (int i = 0; i < 50000 && !done; ++i) {
      {
        absl::MutexLock lock(&shared.mu);
        done = shared.acked[resp.revision()] >= watchers;
      }
      if (!done) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    const double ms =
        std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!done) {
      std::cerr << "push " << k << ": not every watcher ACKed\n";
      return 1;
    }
    millis.push_back(ms);
  }
  stop = true;
  for (auto& c : contexts) c->TryCancel();
  for (auto& t : threads) t.join();
  std::sort(millis.begin(), millis.end());
  auto pct = [&](double p) {
    return millis[std::min(millis.size() - 1,
                           static_cast<size_t>(p * millis.size()))];
  };
  std::cout << "{\"watchers\": " << watchers << ", \"pushes\": " << pushes
            << ", \"p50_ms\": " << pct(0.50) << ", \"p99_ms\": " << pct(0.99)
            << ", \"max_ms\": " << millis.back() << "}" << std::endl;
  return 0;
}
