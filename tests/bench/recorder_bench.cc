// What recording one statement event costs the proxy's session thread, as
// the session does it: the event built, bounded, encoded and appended to a
// real spool (a write(2) per event; fsync is the syncer's, not counted).
// "Whole" builds every event with the session's identity, environment and
// session id; "Shared" encodes those once per session (EncodeShared) and
// each event's own part alone, as sessions do since issue 16.
//   bazel run -c opt //tests/bench:recorder_bench
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "common/audit_bounds.h"
#include "dataplane/audit/recorder.h"
#include "dataplane/audit/sink.h"
#include "dataplane/audit/spool.h"
#include "proto/warden/v1/audit.pb.h"
#include "tests/bench/events.h"

namespace {

using warden::dataplane::audit::EncodeShared;
using warden::dataplane::audit::Recorder;
using warden::dataplane::audit::Spool;
using warden::dataplane::audit::SpoolOptions;

using warden::bench::SessionFields;

warden::v1::AuditEvent Own() {
  return warden::bench::PgbenchSelect(
      "SELECT abalance FROM pgbench_accounts WHERE aid = 4711;");
}

std::unique_ptr<Spool> OpenSpool(const char* name) {
  const std::string dir =
      std::filesystem::temp_directory_path() /
      (std::string("warden-recorder-bench-") + name + "-" +
       std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto spool = Spool::Open(dir, SpoolOptions());
  if (!spool.ok()) std::abort();
  return *std::move(spool);
}

// Keeps the spool from filling: what the sender does as the control plane
// acknowledges.
void Acknowledge(Spool* spool, uint64_t sequence) {
  if (sequence % 4096 == 0) (void)spool->Acknowledge(sequence);
}

void BM_RecordWhole(benchmark::State& state) {
  auto spool = OpenSpool("whole");
  Recorder recorder(spool.get());
  const warden::v1::AuditEvent session = SessionFields();
  const warden::v1::AuditEvent own = Own();
  for (auto _ : state) {
    warden::v1::AuditEvent event = session;  // what NewEvent did
    event.MergeFrom(own);
    auto seq = recorder.Record(std::move(event));
    if (!seq.ok()) std::abort();
    Acknowledge(spool.get(), *seq);
  }
}
BENCHMARK(BM_RecordWhole);

void BM_RecordShared(benchmark::State& state) {
  auto spool = OpenSpool("shared");
  Recorder recorder(spool.get());
  const std::string shared = *EncodeShared(SessionFields());
  const warden::v1::AuditEvent own = Own();
  for (auto _ : state) {
    auto seq = recorder.Record(shared, own);
    if (!seq.ok()) std::abort();
    Acknowledge(spool.get(), *seq);
  }
}
BENCHMARK(BM_RecordShared);

// As sessions record since: staged, and one write per batch of the
// worker's events (Arg: events per batch; 1 is the worst case).
void BM_StageShared(benchmark::State& state) {
  auto spool = OpenSpool("staged");
  Recorder recorder(spool.get());
  const std::string shared = *EncodeShared(SessionFields());
  const warden::v1::AuditEvent own = Own();
  const int64_t batch = state.range(0);
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; ++i) {
      warden::v1::AuditEvent event = own;
      auto seq = recorder.Stage(shared, &event);
      if (!seq.ok()) std::abort();
      Acknowledge(spool.get(), *seq);
    }
    if (!recorder.WriteStaged().ok()) std::abort();
  }
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_StageShared)->Arg(1)->Arg(4)->Arg(16);

// The spool's part: framing, CRC and the write(2) of an encoded event.
void BM_SpoolAppend(benchmark::State& state) {
  auto spool = OpenSpool("append");
  warden::v1::AuditEvent event = SessionFields();
  event.MergeFrom(Own());
  const std::string bytes = event.SerializeAsString();
  for (auto _ : state) {
    auto seq = spool->Append(bytes);
    if (!seq.ok()) std::abort();
    Acknowledge(spool.get(), *seq);
  }
}
BENCHMARK(BM_SpoolAppend);

}  // namespace

BENCHMARK_MAIN();
