// SharedState: what every session of a proxy shares (the config, the
// policy gate in force, the audit sink and its budget windows, the cancel
// registry, failed-login counts, TLS contexts and authenticators), and the
// parts of a session built from it alone: its login's context and its
// statement chain.
//
// Threading: built once at start; the maps are read-only afterwards, the
// gate, registry and counters are thread-safe.
#ifndef WARDEN_DATAPLANE_SESSION_SHARED_STATE_H_
#define WARDEN_DATAPLANE_SESSION_SHARED_STATE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/login_failures.h"
#include "common/names.h"
#include "common/tls.h"
#include "dataplane/audit/sink.h"
#include "dataplane/config/config.h"
#include "dataplane/gate/gate.h"
#include "dataplane/net/resolver.h"
#include "dataplane/session/audit_budget.h"
#include "dataplane/session/authenticator.h"
#include "dataplane/session/cancel_registry.h"
#include "dataplane/session/client_login.h"
#include "dataplane/stages/audit_stage.h"
#include "dataplane/stages/chain.h"
#include "dataplane/stages/directory_stage.h"
#include "dataplane/stages/stage.h"

namespace warden::dataplane::session {

// Connections per client address that have not finished logging in.
// Thread-safe (sessions of every worker share one).
class PendingLogins {
 public:
  // Counts one more for `host`; false (and not counted) at `limit`
  // (0: none).
  bool Add(const std::string& host, int limit) {
    absl::MutexLock lock(&mu_);
    int& n = count_[host];
    if (limit > 0 && n >= limit) {
      if (n == 0) count_.erase(host);
      return false;
    }
    ++n;
    return true;
  }
  void Remove(const std::string& host) {
    absl::MutexLock lock(&mu_);
    auto it = count_.find(host);
    if (it == count_.end()) return;
    if (--it->second <= 0) count_.erase(it);
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> count_ ABSL_GUARDED_BY(mu_);
};

// Everything sessions share. Built once at start; the maps are read-only
// afterwards, the registry and counters are thread-safe.
struct SharedState {
  const config::ProxyConfig* config = nullptr;
  // The config's users (`users:`), folded and by skeleton: a login name
  // that looks like one of them without being it is refused.
  absl::flat_hash_set<std::string> config_user_names;
  LookAlikeIndex config_user_lookalikes;
  // Whether a policy is configured (set once at start). Without one nothing
  // is enforced.
  bool governed = false;
  // The policy gate in force. Replaced as a whole on reload; every batch of
  // client messages is judged by the gate it loaded first, so a statement
  // never sees half of an old and half of a new policy.
  std::shared_ptr<const gate::Gate> CurrentGate() const {
    return std::atomic_load(&gate_);
  }
  void SetGate(std::shared_ptr<const gate::Gate> gate) {
    std::atomic_store(&gate_, std::move(gate));
  }

 private:
  std::shared_ptr<const gate::Gate> gate_;

 public:
  CancelRegistry cancels;
  // Where sessions record audit events; null when audit is off.
  audit::AuditSink* recorder = nullptr;
  // Sync mode: the sender whose acknowledgements statements wait for, and
  // how long they wait; null in async mode.
  audit::AuditAcks* audit_sync = nullptr;
  int audit_sync_timeout_ms = 2000;
  // Whether this proxy's audit events may name `environment` (its
  // certificate covers it); null: no control plane, anything goes. A
  // session on a listener it refuses is refused, so that none of its
  // events is recorded under another environment.
  std::function<absl::Status(const std::string& environment)> may_record;
  // Whether executions also record result events (audit.results).
  bool audit_results = false;
  // Result events that could not be recorded (the statement had run).
  std::atomic<uint64_t> audit_results_lost{0};
  // audit.backlogged_session_rate (0: no limit), and how often a session
  // was paused for it.
  int64_t audit_backlogged_session_rate = 0;
  std::atomic<uint64_t> audit_sessions_throttled{0};
  AuditWindows audit_windows;
  std::atomic<int> client_connections{0};
  // Failed logins per client address: the audit trail records the first
  // ones of a flood one by one and the rest as a summary, and an address
  // that keeps failing is refused for a while.
  warden::LoginFailures login_failures;
  PendingLogins pending_logins;
  // By listener name; absent when the listener has TLS disabled.
  absl::flat_hash_map<std::string, tls::ContextPtr> listener_tls;
  absl::flat_hash_map<std::string, std::unique_ptr<Authenticator>>
      authenticators;
  // By upstream (address of the config entry); absent when TLS is disabled.
  absl::flat_hash_map<const config::Upstream*, tls::ContextPtr> upstream_tls;
  // Looks up upstream host names (set by the server, which owns it; needed
  // only when an upstream is given by name).
  net::Resolver* resolver = nullptr;

  // What a login on `listener` needs from the proxy; the session adds
  // what is its own (the client's address, its identity and subject, its
  // stage callbacks).
  ClientLogin::Context LoginContext(const config::Listener& listener);

  // A logged-in session's statement chain, in order (stages/README.md):
  // the login's directory stage (if any), policy when one is configured,
  // audit when it is on. Returns the audit stage (null: audit is off).
  stages::AuditStage* BuildChain(
      std::unique_ptr<stages::DirectoryStage> directory,
      stages::StageCallbacks* session, stages::AuditTrail* trail,
      stages::Chain* chain);
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_SHARED_STATE_H_
