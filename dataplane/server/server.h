// warden-proxy's server: worker threads, each running one net::EventLoop
// with one SO_REUSEPORT listening socket per listener (the kernel spreads
// connections), and the shared state sessions use.
#ifndef WARDEN_DATAPLANE_SERVER_SERVER_H_
#define WARDEN_DATAPLANE_SERVER_SERVER_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "dataplane/bundle_client/bundle_client.h"
#include "dataplane/admin/admin_server.h"
#include "dataplane/audit/recorder.h"
#include "dataplane/audit/spool.h"
#include "dataplane/config/config.h"
#include "dataplane/gate/gate.h"
#include "dataplane/net/event_loop.h"
#include "dataplane/net/resolver.h"
#include "dataplane/session/cert_authenticator.h"
#include "dataplane/session/session.h"

namespace warden::dataplane::server {

class Server {
 public:
  explicit Server(config::ProxyConfig config);
  ~Server();

  // Start builds TLS contexts and authenticators, binds every listener and
  // starts the workers. Errors name the listener or upstream at fault.
  absl::Status Start();

  // ReloadPolicy recompiles the configured policy files and swaps them in
  // for new statements; on any error the policy in force stays and the
  // error (every diagnostic) is returned. FailedPrecondition when no policy
  // is configured, or when policies come from the control plane.
  absl::Status ReloadPolicy();
  // Stop closes the listening sockets, tells every client the proxy is
  // shutting down (FATAL 57P01), cancels statements in flight, and stops the
  // workers once their sessions are closed (at most a few seconds).
  // Thread-safe; idempotent.
  void Stop();
  // Wait blocks until the workers exit.
  void Wait();

  // The port a listener is bound to (useful with port 0).
  uint16_t BoundPort(const std::string& listener) const;

 private:
  absl::Status StartBundleClient();
  // The admin endpoint's views.
  std::string MetricsText() const;
  absl::StatusOr<std::string> Ready() const;
  absl::Status StartAudit();
  // Where an `auth: cert` listener learns Warden's CA: its
  // tls.client_ca_file, else the control plane's enrollment.
  absl::StatusOr<session::CertAuthenticator::CaSource> CertificateAuthority(
      const config::Listener& listener) const;
  struct Worker;
  // One listening socket of one worker.
  struct Acceptor : net::EventLoop::Handler {
    Server* server = nullptr;
    Worker* worker = nullptr;
    const config::Listener* listener = nullptr;
    int fd = -1;
    void OnEvents(uint32_t events) override;
  };
  struct Worker {
    // Shared: the resolver holds it until it posted its answer, possibly
    // past the worker's end.
    std::shared_ptr<net::EventLoop> loop = std::make_shared<net::EventLoop>();
    std::vector<std::unique_ptr<Acceptor>> acceptors;
    session::SessionMap sessions;  // loop thread only.
    std::thread thread;
  };
  void OnAccept(Worker* worker, const config::Listener* listener, int fd);
  // Stops the worker once its sessions are gone or `deadline` passed.
  // Records the failed-login summaries of windows that ended (all of them
  // with `all`), as AUTHENTICATION events; then, unless stopping, again in
  // a few seconds on worker 0's loop.
  void RecordLoginSummaries(bool all);
  // On the same tick: when sessions ended since the last one, gives the
  // heap's free memory back to the system (glibc keeps it otherwise, so a
  // long session's peak would stay resident after it closed).
  void ReleaseMemory();
  int connections_at_last_tick_ = 0;  // worker 0's loop only
  static void StopWhenDrained(Worker* worker,
                              std::chrono::steady_clock::time_point deadline);

  config::ProxyConfig config_;
  session::SharedState shared_;
  // Set when policies come from warden-control.
  std::unique_ptr<bundle_client::BundleClient> bundle_client_;
  // Audit (when configured): the spool, what sessions record into, and what
  // streams it to warden-control. Declared after bundle_client_, whose
  // certificate the sender uses, so they stop before it.
  std::unique_ptr<audit::Spool> spool_;
  std::unique_ptr<audit::Recorder> recorder_;
  std::unique_ptr<audit::Sender> sender_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // Upstream host names, for every worker's sessions. Destroyed before the
  // workers (after Wait(), so no session asks any more): queued lookups are
  // failed, running ones finish onto loops that no longer run.
  std::unique_ptr<net::Resolver> resolver_;
  // Set once workers_ is complete (read by the bundle client's thread).
  std::atomic<bool> workers_ready_{false};
  std::vector<std::pair<std::string, uint16_t>> bound_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::atomic<bool> stopping_{false};
};

}  // namespace warden::dataplane::server

#endif  // WARDEN_DATAPLANE_SERVER_SERVER_H_
