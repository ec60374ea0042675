// What following a pgbench select-only transaction costs the session's
// correlator, per transaction, in both protocol modes: the whole
// correlator (batches, backpressure, portal origins, and the pairing of
// answers with executions), and the pairing alone (ResultTracker, always
// on since issue 16's fourth step). No intent is recorded (audit off).
//
//   bazel run -c opt //tests/bench:correlator_bench
#include <string>

#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/session/correlator.h"
#include "dataplane/stages/result_tracker.h"

namespace {

using warden::dataplane::session::Correlator;
using warden::dataplane::stages::Completion;
using warden::dataplane::stages::ResultTracker;

// A message's body (without type and length).
std::string Body(const std::string& message) { return message.substr(5); }

struct Transaction {
  Transaction() {
    std::string m;
    warden::dataplane::pgwire::WriteQuery(
        &m, "SELECT abalance FROM pgbench_accounts WHERE aid = 42;");
    query = Body(m);
    m.clear();
    warden::dataplane::pgwire::WriteBind(&m, "", "P0_1");
    bind = Body(m);
    m.clear();
    warden::dataplane::pgwire::WriteExecute(&m, "");
    execute = Body(m);
    tag = std::string("SELECT 1") + '\0';
    row = std::string("\0\1\0\0\0\4" "1234", 10);
  }
  std::string query, bind, execute, tag, row;
};

void BM_CorrelatorSimple(benchmark::State& state) {
  Transaction t;
  Correlator c;
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    c.Relayed('Q', t.query, {}, now);
    c.Forwarded('T', "", now);
    c.Forwarded('D', t.row, now);
    c.Forwarded('C', t.tag, now);
    c.Answered();
    c.Forwarded('Z', "I", now);
    c.Ready(true);
  }
  benchmark::DoNotOptimize(c.completions()->size());
}
BENCHMARK(BM_CorrelatorSimple);

void BM_CorrelatorPrepared(benchmark::State& state) {
  Transaction t;
  Correlator c;
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    c.Relayed('B', t.bind, {}, now);
    c.Relayed('E', t.execute, {}, now);
    c.Relayed('S', "", {}, now);
    c.Forwarded('2', "", now);
    c.Forwarded('D', t.row, now);
    c.Forwarded('C', t.tag, now);
    c.Answered();
    c.Forwarded('Z', "I", now);
    c.Ready(true);
  }
  benchmark::DoNotOptimize(c.completions()->size());
}
BENCHMARK(BM_CorrelatorPrepared);

// The pairing alone: what issue 16's fourth step added to every session.
void BM_PairingSimple(benchmark::State& state) {
  Transaction t;
  ResultTracker r;
  std::vector<Completion> out;
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    r.OnFrontend('Q', t.query, {}, now, &out);
    r.OnBackend('T', "", now, &out);
    r.OnBackend('D', t.row, now, &out);
    r.OnBackend('C', t.tag, now, &out);
    r.OnBackend('Z', "I", now, &out);
  }
  benchmark::DoNotOptimize(out.size());
}
BENCHMARK(BM_PairingSimple);

void BM_PairingPrepared(benchmark::State& state) {
  Transaction t;
  ResultTracker r;
  std::vector<Completion> out;
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    r.OnFrontend('B', t.bind, {}, now, &out);
    r.OnFrontend('E', t.execute, {}, now, &out);
    r.OnFrontend('S', "", {}, now, &out);
    r.OnBackend('2', "", now, &out);
    r.OnBackend('D', t.row, now, &out);
    r.OnBackend('C', t.tag, now, &out);
    r.OnBackend('Z', "I", now, &out);
  }
  benchmark::DoNotOptimize(out.size());
}
BENCHMARK(BM_PairingPrepared);

}  // namespace

BENCHMARK_MAIN();
