// The cluster's ordered log on a real etcd, started here on loopback (TLS,
// client certificates): commit latency and throughput of appends from
// several replicas at once, against the single-node RocksDbLog in the same
// run.
//
//   bazel run //tests/bench:etcd_log_bench -- [--members 3] [--replicas 3]
//       [--writers 2] [--entry-bytes 32000] [--seconds 10]
//
// Each writer appends entries of --entry-bytes (an audit append of about
// 100 events of 300 bytes by default) one at a time, as a replica's group
// commit does under load, and records each append's latency. Prints one
// JSON line per log.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "controlplane/log/etcd_log.h"
#include "controlplane/log/rocksdb_log.h"
#include "tests/unit/controlplane/log/etcd_cluster.h"

namespace {

using warden::controlplane::log::Log;

struct Result {
  uint64_t appends = 0;
  double seconds = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int errors = 0;
};

Result Drive(const std::vector<Log*>& replicas, int writers,
             size_t entry_bytes, absl::Duration duration) {
  absl::Mutex mu;
  std::vector<double> latencies;
  std::atomic<int> errors{0};
  const std::string entry(entry_bytes, 'e');
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  std::vector<std::thread> threads;
  for (Log* log : replicas) {
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, log] {
        std::vector<double> mine;
        while (absl::Now() < end) {
          const absl::Time t0 = absl::Now();
          if (!log->AppendBatch({entry}).ok()) {
            ++errors;
            continue;
          }
          mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
        }
        absl::MutexLock lock(&mu);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
    }
  }
  for (auto& t : threads) t.join();
  Result r;
  r.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  r.appends = latencies.size();
  r.errors = errors.load();
  std::sort(latencies.begin(), latencies.end());
  if (!latencies.empty()) {
    r.p50_ms = latencies[latencies.size() / 2];
    r.p99_ms = latencies[std::min(latencies.size() - 1,
                                  latencies.size() * 99 / 100)];
  }
  return r;
}

void Print(const char* log, int members, int replicas, int writers,
           size_t entry_bytes, const Result& r) {
  std::printf(
      "{\"log\": \"%s\", \"etcd_members\": %d, \"replicas\": %d, "
      "\"writers_per_replica\": %d, \"entry_bytes\": %zu, \"appends\": %lu, "
      "\"appends_per_second\": %.0f, \"mb_per_second\": %.1f, "
      "\"p50_ms\": %.2f, \"p99_ms\": %.2f, \"errors\": %d}\n",
      log, members, replicas, writers, entry_bytes,
      static_cast<unsigned long>(r.appends), r.appends / r.seconds,
      r.appends * entry_bytes / r.seconds / 1e6, r.p50_ms, r.p99_ms,
      r.errors);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("etcd log bench");
  int members = 3, replicas = 3, writers = 2, seconds = 10;
  size_t entry_bytes = 32000;
  app.add_option("--members", members);
  app.add_option("--replicas", replicas);
  app.add_option("--writers", writers);
  app.add_option("--entry-bytes", entry_bytes);
  app.add_option("--seconds", seconds);
  CLI11_PARSE(app, argc, argv);

  const std::string dir =
      std::filesystem::temp_directory_path() / "warden-etcd-log-bench";
  std::filesystem::remove_all(dir);
  warden::testing::EtcdCluster cluster(dir + "/etcd", members);
  std::string why;
  if (!cluster.Start(&why)) {
    std::fprintf(stderr, "%s\n", why.c_str());
    return 1;
  }
  std::vector<std::unique_ptr<warden::controlplane::log::EtcdLog>> logs;
  std::vector<Log*> shared;
  for (int i = 0; i < replicas; ++i) {
    auto options = cluster.Options("/warden/bench/");
    // Spread the replicas over the members, as a deployment would.
    std::rotate(options.endpoints.begin(),
                options.endpoints.begin() + i % options.endpoints.size(),
                options.endpoints.end());
    auto log = warden::controlplane::log::EtcdLog::Open(options);
    if (!log.ok()) {
      std::fprintf(stderr, "%s\n", log.status().ToString().c_str());
      return 1;
    }
    shared.push_back(log->get());
    logs.push_back(*std::move(log));
  }
  Print("etcd", members, replicas, writers, entry_bytes,
        Drive(shared, writers, entry_bytes, absl::Seconds(seconds)));
  logs.clear();

  auto single = warden::controlplane::log::RocksDbLog::Open(dir + "/rocksdb");
  if (!single.ok()) return 1;
  Print("rocksdb (single node)", 0, 1, writers * replicas, entry_bytes,
        Drive({single->get()}, writers * replicas, entry_bytes,
              absl::Seconds(seconds)));
  single->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
