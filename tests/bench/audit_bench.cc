// Load generator for the control plane's audit ingest: enrolls P proxies,
// then each sends AuditIngest.Append batches of B statement events (each
// about the size of a real one) for D seconds, back to back, over its own
// mTLS connection. Reports committed events per second and, for every
// batch, the time from its acknowledgement to the first signed checkpoint
// that covers it (polled with GetCheckpoint every 20 ms). With
// --control-pid, also warden-control's CPU (utime + stime of all its
// threads, from /proc/PID/stat) over the load, per committed event: read
// after enrollment, right before the first Append, and after the last
// acknowledgement. Prints JSON.
//
//   audit_bench --server localhost:7443 --ca ca.crt --token-file admin.token
//       [--proxies 4] [--batch 1000] [--seconds 10] [--control-pid PID]
//       [--id-prefix ingest-]
// Also reports each Append's round trip (append_p50_ms, append_p99_ms):
// the commit latency a proxy sees.
// tests/bench/audit.py runs it against a fresh warden-control.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "proto/warden/v1/audit.grpc.pb.h"
#include "tests/bench/enroll.h"
#include "tests/bench/events.h"

namespace {

using Clock = std::chrono::steady_clock;

// utime + stime of process `pid` (all its threads) in seconds; -1 when
// unreadable.
double CpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold
  // spaces: state is field 3, utime 14, stime 15.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<std::string> fields;
  size_t i = close + 2;
  while (i < stat.size()) {
    size_t end = stat.find(' ', i);
    if (end == std::string::npos) end = stat.size();
    fields.push_back(stat.substr(i, end - i));
    i = end + 1;
  }
  if (fields.size() < 13) return -1;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"audit_bench: AuditIngest load generator"};
  std::string server, ca, token_file, id_prefix = "ingest-";
  int proxies = 4, batch = 1000, seconds = 10, control_pid = 0;
  app.add_option("--server", server)->required();
  app.add_option("--ca", ca)->required();
  app.add_option("--token-file", token_file)->required();
  app.add_option("--proxies", proxies);
  app.add_option("--batch", batch);
  app.add_option("--seconds", seconds);
  app.add_option("--id-prefix", id_prefix,
                 "proxy ids are PREFIX0, PREFIX1, ... (distinct per run when "
                 "several runs share a cluster)");
  app.add_option("--control-pid", control_pid,
                 "warden-control's PID, to report its CPU per event");
  CLI11_PARSE(app, argc, argv);

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = warden::bench::ReadTrimmed(ca) + "\n";
  auto admin = grpc::CreateChannel(server, grpc::SslCredentials(ssl));
  const std::string bearer = "Bearer " + warden::bench::ReadTrimmed(token_file);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < proxies; ++i) {
    auto channel = warden::bench::EnrollProxy(admin, bearer, server,
                                              ssl.pem_root_certs,
                                              id_prefix + std::to_string(i),
                                              "bench", i);
    if (!channel.ok()) {
      std::cerr << channel.status() << "\n";
      return 1;
    }
    channels.push_back(*std::move(channel));
  }
  // An audit reader for checkpoints.
  const std::string reader_token = [&] {
    warden::v1::CreateTokenRequest r;
    r.set_name("bench-reader");
    r.add_scopes(warden::v1::TOKEN_SCOPE_AUDIT_READ);
    warden::v1::CreateTokenResponse out;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", bearer);
    const grpc::Status s =
        warden::v1::TokenService::NewStub(admin)->CreateToken(&ctx, r, &out);
    if (!s.ok()) {
      std::cerr << "audit reader token: " << s.error_message() << "\n";
      return std::string();
    }
    return "Bearer " + out.token();
  }();
  if (reader_token.empty()) return 1;

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> committed{0};
  std::mutex mu;
  // (tree size after the batch, when it was acknowledged)
  std::vector<std::pair<uint64_t, Clock::time_point>> acked;
  std::vector<double> checkpoint_ms;
  std::vector<double> append_ms;  // each Append's round trip
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  const double cpu_before = control_pid > 0 ? CpuSeconds(control_pid) : -1;
  const auto start = Clock::now();
  for (int p = 0; p < proxies; ++p) {
    threads.emplace_back([&, p] {
      auto stub = warden::v1::AuditIngest::NewStub(channels[p]);
      const std::string proxy = id_prefix + std::to_string(p);
      uint64_t next = 1;
      // As a proxy sends them: the event's bytes as spooled, with the
      // sequence appended (encoded_events). Encoded once; each batch only
      // renumbers (the load is the server's).
      warden::v1::AuditEvent base = warden::bench::UpdateIntent(proxy, 1);
      base.clear_sequence();
      const std::string base_bytes = base.SerializeAsString();
      warden::v1::AppendAuditRequest request;
      for (int i = 0; i < batch; ++i) request.add_encoded_events();
      warden::v1::AuditEvent numbered;
      while (!stop) {
        for (int i = 0; i < batch; ++i) {
          numbered.set_sequence(next + i);
          std::string* e = request.mutable_encoded_events(i);
          *e = base_bytes;
          numbered.AppendToString(e);
        }
        warden::v1::AppendAuditResponse response;
        grpc::ClientContext ctx;
        const auto sent = Clock::now();
        const grpc::Status s = stub->Append(&ctx, request, &response);
        const double took =
            std::chrono::duration<double, std::milli>(Clock::now() - sent)
                .count();
        if (!s.ok()) {
          std::cerr << proxy << ": " << s.error_message() << "\n";
          failed = true;
          return;
        }
        next += batch;
        committed += batch;
        std::lock_guard<std::mutex> lock(mu);
        acked.emplace_back(response.tree_size(), Clock::now());
        append_ms.push_back(took);
      }
    });
  }
  // Checkpoint watcher.
  std::atomic<bool> give_up{false};  // checkpoints stopped coming
  std::atomic<bool> all_acked{false};  // every proxy thread has ended
  std::atomic<uint64_t> last_checkpoint{0};
  std::string last_checkpoint_error;  // the watcher's; read after join
  double slowest_checkpoint_ms = 0;   // likewise
  int checkpoint_errors = 0;          // likewise
  std::thread watcher([&] {
    auto log = warden::v1::AuditLog::NewStub(admin);
    size_t covered = 0;
    // Until every Append in flight at `stop` has its answer (all_acked)
    // and every acknowledgement is covered.
    while ((!all_acked || covered < acked.size()) && !give_up) {
      warden::v1::GetCheckpointResponse cp;
      grpc::ClientContext ctx;
      ctx.AddMetadata("authorization", reader_token);
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
      const auto asked = Clock::now();
      const grpc::Status got = log->GetCheckpoint(&ctx, {}, &cp);
      slowest_checkpoint_ms = std::max<double>(
          slowest_checkpoint_ms,
          std::chrono::duration<double, std::milli>(Clock::now() - asked)
              .count());
      if (got.ok()) last_checkpoint = cp.tree_size();
      if (!got.ok()) {
        ++checkpoint_errors;
        last_checkpoint_error = got.error_message();
      }
      if (got.ok()) {
        const auto now = Clock::now();
        std::lock_guard<std::mutex> lock(mu);
        while (covered < acked.size() && acked[covered].first <= cp.tree_size()) {
          checkpoint_ms.push_back(
              std::chrono::duration<double, std::milli>(now - acked[covered].second)
                  .count());
          ++covered;
        }
        // Acks may arrive out of tree-size order across proxies.
        std::sort(acked.begin() + covered, acked.end());
      }
      if (all_acked && covered >= acked.size()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  all_acked = true;
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu_after = control_pid > 0 ? CpuSeconds(control_pid) : -1;
  // Every acknowledged batch should be in a checkpoint within seconds; a
  // control plane that stops making them must not hang the bench.
  for (int waited = 0; waited < 600; ++waited) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (checkpoint_ms.size() >= acked.size()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  give_up = true;
  watcher.join();
  if (checkpoint_ms.size() < acked.size()) {
    std::cerr << acked.size() - checkpoint_ms.size()
              << " acknowledged batches were in no checkpoint after 60 s "
              << "(largest acknowledged tree size " << acked.back().first
              << ", last checkpoint's " << last_checkpoint << "; "
              << checkpoint_errors << " GetCheckpoint errors, last '"
              << last_checkpoint_error << "'; slowest call "
              << slowest_checkpoint_ms << " ms; " << acked.size()
              << " acknowledged, " << checkpoint_ms.size() << " covered)\n";
    failed = true;
  }
  std::sort(checkpoint_ms.begin(), checkpoint_ms.end());
  std::sort(append_ms.begin(), append_ms.end());
  auto quantile = [](const std::vector<double>& v, double q) {
    if (v.empty()) return 0.0;
    return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
  };
  auto pct = [&](double q) { return quantile(checkpoint_ms, q); };
  std::cout << "{\"proxies\": " << proxies << ", \"batch\": " << batch
            << ", \"seconds\": " << elapsed << ", \"events\": " << committed
            << ", \"events_per_second\": "
            << static_cast<uint64_t>(committed / elapsed)
            << ", \"event_bytes\": "
            << warden::bench::UpdateIntent("ingest-0", 1).ByteSizeLong()
            << ", \"checkpoint_p50_ms\": " << pct(0.5)
            << ", \"checkpoint_p99_ms\": " << pct(0.99)
            << ", \"append_p50_ms\": " << quantile(append_ms, 0.5)
            << ", \"append_p99_ms\": " << quantile(append_ms, 0.99);
  if (cpu_before >= 0 && cpu_after >= 0 && committed > 0) {
    const double cpu = cpu_after - cpu_before;
    std::cout << ", \"control_cpu_seconds\": " << cpu
              << ", \"control_cpu_us_per_event\": "
              << cpu * 1e6 / static_cast<double>(committed)
              << ", \"control_cpu_us_per_append\": "
              << cpu * 1e6 / (static_cast<double>(committed) / batch);
  }
  std::cout << "}" << std::endl;
  return failed ? 1 : 0;
}
