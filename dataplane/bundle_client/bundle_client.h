// The proxy's side of policy distribution: watches warden-control for
// signed policy bundles (BundleDistribution.Watch), verifies each one
// (trusted Ed25519 key, signature, digests, revision order; policy/bundle),
// hands it to the proxy to swap in, persists it as last-known-good, and
// ACKs or NACKs it. While the control plane is away it keeps the bundle in
// force and reconnects with backoff; at start it re-verifies the
// last-known-good bundle from disk, so a restarted proxy serves without the
// control plane. A stream that goes silent (no heartbeat from warden-control
// for three of its intervals; WatchLiveness) is given up and reconnected,
// so a blackholed connection does not hold deactivations back until gRPC
// keepalive notices.
//
// Authentication (mTLS): the proxy holds a client certificate from Warden's
// CA. On first start it generates a P-256 key in the state directory and
// enrolls (ProxyEnrollment.Enroll) with a one-time bootstrap token; the
// certificate names its proxy id and environment, which the hello then
// reports. At two thirds of the certificate's life the Watch stream is
// ended, a new key and certificate are obtained with Renew (authenticated
// by the current certificate) and the watch resumes. An expired or lost
// certificate needs a new bootstrap token.
#ifndef WARDEN_DATAPLANE_BUNDLE_CLIENT_BUNDLE_CLIENT_H_
#define WARDEN_DATAPLANE_BUNDLE_CLIENT_BUNDLE_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/address.h"
#include "dataplane/bundle_client/watch_liveness.h"
#include "policy/bundle/bundle.h"
#include "proto/warden/v1/policy.pb.h"

namespace grpc {
class ChannelCredentials;
class ClientContext;
}

namespace warden::dataplane::bundle_client {

struct Options {
  // warden-control, host:port; the replicas of a cluster as a
  // comma-separated list (the client moves to the next one when the one in
  // use fails).
  std::string address;
  std::string ca_file;      // CA of warden-control's server certificate.
  std::vector<std::string> trusted_key_files;  // Ed25519 public keys (PEM).
  std::string state_dir;    // last-known-good, proxy.key, proxy.crt.
  // The one-time token to enroll with when there is no valid certificate
  // yet. Empty: the WARDEN_BOOTSTRAP_TOKEN environment variable.
  std::string bootstrap_token_file;
  // Enrollment: the id to ask for (a token may fix it). Empty: the
  // certificate's. A certificate naming another id or environment than
  // these (when set) is refused.
  std::string proxy_id;
  std::string environment;
  // The id to ask for when proxy_id is empty (e.g. the host name).
  std::string enroll_as;
  // A Watch stream that delivered nothing (no heartbeat, no bundle) for
  // this long is presumed dead: cancelled, reported unhealthy and replaced
  // by a new connection. Judged only once warden-control sent a heartbeat
  // on it (one that predates heartbeats sends none). Zero: three of the
  // heartbeat intervals warden-control announces (15 s at its default).
  // Never less than two announced intervals (WatchLiveness).
  absl::Duration watch_silence_timeout = absl::ZeroDuration();
};

class BundleClient {
 public:
  // Called with a verified bundle; returns an error if the proxy cannot use
  // it (the bundle is then NACKed and not persisted).
  using ApplyFn = std::function<absl::Status(
      const warden::v1::PolicyBundle& bundle, uint64_t revision)>;

  static absl::StatusOr<std::unique_ptr<BundleClient>> Create(Options options,
                                                              ApplyFn apply);
  ~BundleClient();  // Stop()s.

  // LoadLastKnownGood verifies and applies the bundle persisted by an
  // earlier run. NotFound when there is none; other errors when it does not
  // verify (it is then not applied).
  absl::Status LoadLastKnownGood();

  // Start watches in a background thread until Stop().
  void Start();
  void Stop();

  uint64_t running_revision() const { return running_.load(); }

  // Whether the policy watch is healthy: a stream that has stayed open
  // kStreamHealthyAfter, or one that delivered a bundle, and that is not
  // silent or behind (WatchLiveness: no heartbeat for
  // watch_silence_timeout, or a newer revision announced and not sent).
  // Until then (and from the first failure on) `connected` is false,
  // `since` is when it last stopped being healthy (the start, before the
  // first stream; for a silent stream, when it last delivered something),
  // and `last_error` why the last stream ended (or why the open one is
  // being given up). A proxy keeps serving its last bundle meanwhile; this
  // is what /readyz and the metrics report.
  struct WatchHealth {
    bool connected = false;
    absl::Time since;
    std::string last_error;
  };
  WatchHealth watch_health() const;
  static constexpr absl::Duration kStreamHealthyAfter = absl::Seconds(10);

  // The identity the current certificate names; empty before enrollment.
  std::string proxy_id() const;

  // The proxy's current key, certificate and the identity it names, for
  // other clients of warden-control (the audit sender). Unavailable before
  // enrollment.
  struct Identity {
    std::string key_pem;
    std::string cert_pem;
    std::string proxy_id;
    std::string environment;
  };
  absl::StatusOr<Identity> CurrentIdentity() const;
  // OK when the current certificate covers `environment` (its own or one
  // it also serves), or when there is none yet; FailedPrecondition with
  // what to do otherwise.
  absl::Status MayServe(const std::string& environment) const;
  // The CA (PEM) warden-control's certificate is verified with.
  const std::string& server_ca_pem() const { return server_ca_pem_; }
  // Warden's CA (PEM): the one that issued this proxy's certificate (kept
  // in STATE_DIR/warden-ca.crt since enrollment), which also issues people
  // their `wardenctl login` certificates. Before the first enrollment that
  // saved it: server_ca_pem(), which is the same CA unless warden-control
  // serves an operator's certificate.
  std::string warden_ca_pem() const;

 private:
  struct Credentials {
    std::string key_pem;
    std::string cert_pem;
    std::string proxy_id;
    std::string environment;
    std::vector<std::string> also_serves;
    absl::Time not_after;
    absl::Time renew_at;  // two thirds into its life.
  };
  // Loads, enrolls or renews so that a certificate valid now is held.
  absl::Status EnsureCredentials();
  absl::StatusOr<Credentials> LoadCredentials(const std::string& key_pem,
                                              const std::string& cert_pem)
      const;
  // Enroll (with the bootstrap token) or Renew (with `current`).
  absl::StatusOr<Credentials> Obtain(const Credentials* current);
  // Obtain from one replica.
  absl::StatusOr<Credentials> ObtainFrom(const std::string& address,
                                         const Credentials* current,
                                         const std::string& key_pem,
                                         const std::string& csr_pem);
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(
      const Credentials* client) const;
  BundleClient(Options options, ApplyFn apply,
               policy::bundle::TrustedKeys keys);
  void Run();
  // One Watch stream, until it ends; returns why.
  absl::Status WatchOnce();
  // Verifies, applies and persists; the error is what gets NACKed.
  absl::Status Accept(const warden::v1::SignedBundle& signed_bundle);
  std::string LastKnownGoodPath() const;
  std::string WardenCaPath() const;
  // Where the proxy keeps that warden-control sends heartbeats (their
  // interval in milliseconds), so that a restart expects them at once.
  std::string HeartbeatsPath() const {
    return options_.state_dir + "/watch-heartbeats";
  }
  void RememberHeartbeats() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the open stream has shown it works: it delivered a bundle (or
  // replaced a healthy one for a renewal); once heartbeats are expected,
  // it delivered one; before that, it stayed open kStreamHealthyAfter.
  bool StreamProvenLocked(absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  // options_.address as a list, one of them in use.
  warden::AddressRing addresses_;
  const ApplyFn apply_;
  const policy::bundle::TrustedKeys keys_;
  std::string server_ca_pem_;
  std::string warden_ca_pem_ ABSL_GUARDED_BY(mu_);
  // Only the Run() thread writes credentials_ (under mu_).
  std::unique_ptr<Credentials> credentials_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> running_{0};
  std::atomic<bool> stopping_{false};
  mutable absl::Mutex mu_;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Watch health (watch_health()).
  absl::Time stream_opened_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool delivered_ ABSL_GUARDED_BY(mu_) = false;  // on the open stream
  // The open stream replaced a healthy one for a certificate renewal.
  bool renewed_healthy_ ABSL_GUARDED_BY(mu_) = false;
  // The open stream's liveness (heartbeats), and why the watchdog gave it
  // up (OK: it did not). watch_done_: the stream ended (the watchdog stops).
  std::unique_ptr<WatchLiveness> liveness_ ABSL_GUARDED_BY(mu_);
  absl::Status given_up_ ABSL_GUARDED_BY(mu_);
  bool watch_done_ ABSL_GUARDED_BY(mu_) = false;
  // The interval of the last heartbeat any stream of this process, or of
  // an earlier process with this state directory, got (zero: none yet):
  // from then on every new stream is expected to heartbeat from its
  // opening.
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_);
  bool heartbeats_seen_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time unhealthy_since_ ABSL_GUARDED_BY(mu_) = absl::Now();
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  absl::Notification stopped_;
  std::thread thread_;
};

}  // namespace warden::dataplane::bundle_client

#endif  // WARDEN_DATAPLANE_BUNDLE_CLIENT_BUNDLE_CLIENT_H_
