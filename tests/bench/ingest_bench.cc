// warden-control's audit ingest without gRPC: AuditIngestImpl::AppendFrom
// in a loop from P threads (as P proxies' Appends), against a real log and
// store in a fresh directory, so every commit pays its fsync. Reports the
// process's CPU (all threads, RocksDB's background flushes and compactions
// included) per event and per Append. Events are shaped as audit_bench's
// (311 bytes, sent as encoded_events the way proxies send them).
//
//   bazel run -c opt //tests/bench:ingest_bench -- --dir /var/tmp/x \
//       [--batch 10] [--appends 2000] [--proxies 1]
//
// What audit.py measures end to end minus TLS, HTTP/2 and gRPC; perf
// record of this binary shows the ingest path alone.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/x509.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/ca/ca.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/server/audit_services.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "proto/warden/v1/audit.pb.h"
#include "tests/bench/events.h"

namespace {

using namespace warden::controlplane;  // NOLINT

double ProcessCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ingest_bench: AppendFrom without gRPC"};
  std::string dir;
  int batch = 10, appends = 2000, proxies = 1;
  app.add_option("--dir", dir, "a fresh directory (removed first)")->required();
  app.add_option("--batch", batch, "events per Append");
  app.add_option("--appends", appends, "Appends per proxy");
  app.add_option("--proxies", proxies, "threads appending as proxies");
  CLI11_PARSE(app, argc, argv);

  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto log = log::RocksDbLog::Open(dir + "/log");
  auto store = store::Store::Open(dir + "/state");
  if (!log.ok() || !store.ok()) {
    std::cerr << "open: " << log.status() << " " << store.status() << "\n";
    return 1;
  }
  state::StateMachine state(log->get(), store->get());
  audit::Ledger ledger(store->get());
  auto key = warden::x509::GenerateKey();
  auto ca_cert = warden::x509::MakeSelfSignedCa(*key, {"bench CA", {}, {}, {}},
                                                absl::Now(), absl::Hours(1));
  auto authority = ca::Authority::FromPem(*ca_cert, *key);
  if (!authority.ok()) {
    std::cerr << authority.status() << "\n";
    return 1;
  }
  server::AuditIngestImpl ingest(&state, &ledger, authority->get());

  std::atomic<bool> failed{false};
  const double cpu0 = ProcessCpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int p = 0; p < proxies; ++p) {
    threads.emplace_back([&, p] {
      const std::string proxy = absl::StrCat("ingest-", p);
      warden::v1::AuditEvent base = warden::bench::UpdateIntent(proxy, 4711);
      const std::string base_bytes = base.SerializeAsString();
      warden::v1::AuditEvent numbered;
      warden::v1::AppendAuditRequest request;
      for (int i = 0; i < batch; ++i) request.add_encoded_events();
      uint64_t next = 1;
      for (int a = 0; a < appends && !failed; ++a) {
        for (int i = 0; i < batch; ++i) {
          numbered.set_sequence(next + i);
          std::string* e = request.mutable_encoded_events(i);
          *e = base_bytes;
          numbered.AppendToString(e);
        }
        warden::v1::AppendAuditResponse response;
        absl::Status s = ingest.AppendFrom({proxy, "bench"}, request,
                                           absl::Now(), &response);
        if (!s.ok()) {
          std::cerr << proxy << ": " << s << "\n";
          failed = true;
          return;
        }
        next += batch;
      }
    });
  }
  for (auto& t : threads) t.join();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  const double cpu = ProcessCpuSeconds() - cpu0;
  const double events = static_cast<double>(proxies) * appends * batch;
  std::cout << "{\"proxies\": " << proxies << ", \"batch\": " << batch
            << ", \"appends\": " << proxies * appends
            << ", \"seconds\": " << wall
            << ", \"events_per_second\": " << static_cast<uint64_t>(events / wall)
            << ", \"cpu_us_per_event\": " << cpu * 1e6 / events
            << ", \"cpu_us_per_append\": " << cpu * 1e6 / (proxies * appends)
            << ", \"wall_us_per_append\": " << wall * 1e6 / appends << "}"
            << std::endl;
  std::filesystem::remove_all(dir);
  return failed ? 1 : 0;
}
