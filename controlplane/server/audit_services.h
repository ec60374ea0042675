// warden-control's audit services: AuditIngest (proxies append their
// events, authenticated by their certificate) and AuditLog (checkpoints,
// entries and proofs for auditors and SIEMs, scope audit:read).
#ifndef WARDEN_CONTROLPLANE_SERVER_AUDIT_SERVICES_H_
#define WARDEN_CONTROLPLANE_SERVER_AUDIT_SERVICES_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/login_failures.h"
#include "absl/time/time.h"
#include "controlplane/audit/checkpointer.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/ca/ca.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/tokens/tokens.h"
#include "proto/warden/v1/audit.grpc.pb.h"

namespace warden::controlplane::server {

// Most events one Append may carry.
inline constexpr int kMaxAuditEventsPerAppend = 10000;

class AuditIngestImpl final
    : public warden::v1::AuditIngest::CallbackService {
 public:
  // Not owned.
  AuditIngestImpl(state::StateMachine* state, const audit::Ledger* ledger,
                  const ca::Authority* authority);
  // Finishes the Appends it has taken, then stops its threads.
  ~AuditIngestImpl() override;

  grpc::ServerUnaryReactor* Append(
      grpc::CallbackServerContext* context,
      const warden::v1::AppendAuditRequest* request,
      warden::v1::AppendAuditResponse* response) override;

  // The body of Append once the caller is authenticated as `identity`
  // (tests call it directly).
  // An event whose sequence is already recorded with other content (two
  // proxies speaking as one, or a replaced spool) makes the whole Append
  // fail with AlreadyExists: it is never dropped as a duplicate.
  absl::Status AppendFrom(const ca::ProxyIdentity& identity,
                          const warden::v1::AppendAuditRequest& request,
                          absl::Time now,
                          warden::v1::AppendAuditResponse* response);

  // Events refused since start because their sequence was already
  // recorded with other content.
  uint64_t sequence_conflicts() const { return conflicts_.load(); }

  // Threads that run Appends (see appenders_).
  static constexpr int kAppendThreads = 16;

  // Called (outside any lock) when events were refused as conflicting,
  // at most once a minute per source; AdminAudit records it in the log.
  using Alarm =
      std::function<void(const std::string& source, const std::string& detail)>;
  void SetAlarm(Alarm alarm) { alarm_ = std::move(alarm); }

 private:
  state::StateMachine* const state_;
  const audit::Ledger* const ledger_;
  const ca::Authority* const authority_;
  // An Append waits for its commit's fsync. gRPC runs callbacks on as
  // few threads as there are cores (two here), so Appends waited there
  // would take turns, and concurrent proxies would never share a group
  // commit. One Append at a time runs on a gRPC thread (no handover for a
  // proxy appending alone); the others run on these threads, and gRPC's
  // go on serving.
  absl::Mutex work_mu_;
  std::deque<std::function<void()>> work_ ABSL_GUARDED_BY(work_mu_);
  int inline_appends_ ABSL_GUARDED_BY(work_mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(work_mu_) = false;
  std::vector<std::thread> appenders_;
  std::atomic<uint64_t> conflicts_{0};
  Alarm alarm_;
  absl::Mutex sources_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<absl::Mutex>> source_locks_
      ABSL_GUARDED_BY(sources_mu_);
  // When each source's conflict was last raised as an alarm, and how
  // many conflicting events came since.
  struct AlarmState {
    absl::Time last = absl::InfinitePast();
    uint64_t since = 0;
  };
  absl::flat_hash_map<std::string, AlarmState> alarms_
      ABSL_GUARDED_BY(sources_mu_);
};

// Records the control plane's own actions (policy pushes and rollbacks,
// token and enrollment changes) in the audit log, as source
// "control/warden-control", one ADMIN event each, after the action
// committed. Thread-safe.
class AdminAudit {
 public:
  // Also records `ingest`'s alarms (audit.sequence_conflict). `self` is
  // the source its events are recorded under ("control/<self>"), with
  // sequences of its own: each replica of a cluster needs its own name, or
  // their events would take each other's sequences and be refused as
  // conflicting (red team).
  explicit AdminAudit(AuditIngestImpl* ingest,
                      std::string self = "warden-control");
  // Logs (and returns) an error when the event cannot be appended.
  absl::Status Record(const std::string& actor, const std::string& action,
                      const std::string& target, const std::string& detail,
                      bool success = true);

 private:
  AuditIngestImpl* const ingest_;
  const std::string self_;
  absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;  // 0: ask the log
};

// Refused API calls (no, unknown, revoked or expired token; a token
// without the scope): who tried what is an audit question (red team: an
// attempt to mint an admin token with a revoked one left no trace). Each
// refusal is an ADMIN event `api.refused` (actor: the token when it
// authenticated, else "unauthenticated"; target: the RPC, e.g.
// "TokenService/CreateToken"; detail: the scope it needs and the reason), the first ones of a peer in a window one by one and the
// rest in a summary (`api.refused.summary`), so a flood cannot flood the
// log. Thread-safe; a thread records the summaries.
class ApiRefusals {
 public:
  ApiRefusals(AdminAudit* audit, LoginFailures::Options options);
  ~ApiRefusals();  // records the open windows' summaries

  // `method` a gRPC method ("/warden.v1.TokenService/CreateToken"), or
  // with `needed` the call of another API and the scope it needs ("SCIM
  // POST /Users", "scim").
  void Refused(const std::string& peer, const std::string& actor,
               absl::string_view method, const absl::Status& why,
               absl::string_view needed = "");

 private:
  void RecordSummaries(bool all);

  static constexpr uint64_t kMaxIndividualPerMinute = 200;
  AdminAudit* const audit_;
  LoginFailures failures_;
  absl::Mutex overflow_mu_;
  absl::Time minute_start_ ABSL_GUARDED_BY(overflow_mu_) = absl::InfinitePast();
  uint64_t individual_ ABSL_GUARDED_BY(overflow_mu_) = 0;
  uint64_t overflow_ ABSL_GUARDED_BY(overflow_mu_) = 0;
  std::set<std::string> overflow_peers_ ABSL_GUARDED_BY(overflow_mu_);
  absl::Notification stop_;
  std::thread summarizer_;
};

class AuditLogImpl final : public warden::v1::AuditLog::CallbackService {
 public:
  // Not owned.
  AuditLogImpl(const tokens::Tokens* tokens, const audit::Ledger* ledger,
               audit::Checkpointer* checkpointer)
      : tokens_(tokens), ledger_(ledger), checkpointer_(checkpointer) {}

  grpc::ServerUnaryReactor* GetCheckpoint(
      grpc::CallbackServerContext* context,
      const warden::v1::GetCheckpointRequest* request,
      warden::v1::GetCheckpointResponse* response) override;
  grpc::ServerUnaryReactor* GetEntries(
      grpc::CallbackServerContext* context,
      const warden::v1::GetEntriesRequest* request,
      warden::v1::GetEntriesResponse* response) override;
  grpc::ServerUnaryReactor* GetInclusionProof(
      grpc::CallbackServerContext* context,
      const warden::v1::GetInclusionProofRequest* request,
      warden::v1::GetInclusionProofResponse* response) override;
  grpc::ServerUnaryReactor* GetConsistencyProof(
      grpc::CallbackServerContext* context,
      const warden::v1::GetConsistencyProofRequest* request,
      warden::v1::GetConsistencyProofResponse* response) override;

 private:
  const tokens::Tokens* const tokens_;
  const audit::Ledger* const ledger_;
  audit::Checkpointer* const checkpointer_;
};

// AuditExport for SIEMs: Subscribe follows the log from a cursor or a time
// (filters, native or OCSF JSON, a signed checkpoint every interval);
// ListEvents pages through it. Scope audit:read.
class AuditExportImpl final
    : public warden::v1::AuditExport::CallbackService {
 public:
  // Not owned.
  AuditExportImpl(const tokens::Tokens* tokens, const audit::Ledger* ledger,
                  audit::Checkpointer* checkpointer)
      : tokens_(tokens), ledger_(ledger), checkpointer_(checkpointer) {}

  grpc::ServerWriteReactor<warden::v1::SubscribeResponse>* Subscribe(
      grpc::CallbackServerContext* context,
      const warden::v1::SubscribeRequest* request) override;
  grpc::ServerUnaryReactor* ListEvents(
      grpc::CallbackServerContext* context,
      const warden::v1::ListEventsRequest* request,
      warden::v1::ListEventsResponse* response) override;

  const audit::Ledger* ledger() const { return ledger_; }
  audit::Checkpointer* checkpointer() const { return checkpointer_; }
  // OK while `bearer` (the token a Subscribe stream opened with) still
  // grants it: an open stream ends once its token is revoked, expires or
  // its check cannot be made (red team: `audit tail --follow` went on
  // streaming after the revocation).
  absl::Status StillAuthorized(const std::string& bearer) const;

 private:
  const tokens::Tokens* const tokens_;
  const audit::Ledger* const ledger_;
  audit::Checkpointer* const checkpointer_;
};

}  // namespace warden::controlplane::server

#endif  // WARDEN_CONTROLPLANE_SERVER_AUDIT_SERVICES_H_
