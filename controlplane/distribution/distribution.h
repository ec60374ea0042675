// The server side of BundleDistribution.Watch, xDS-like: one bidirectional
// stream per proxy. The proxy says hello (id, environment, the revision it
// runs); the server sends the head bundle with a fresh nonce when it differs;
// the proxy ACKs or NACKs that nonce; every later revision is pushed to the
// stream by Publish(). The Distributor keeps the fleet status (who runs
// what, last NACK error, last seen) for GetFleetStatus.
//
// Watch is authenticated by the proxy's client certificate (mTLS, issued by
// Warden's CA, controlplane/ca): a stream without one is UNAUTHENTICATED,
// and a hello naming another proxy or environment than the certificate is
// PERMISSION_DENIED. The fleet view is persisted in the store's fleet
// column, so it survives a restart (with every proxy disconnected until it
// reconnects).
//
// Heartbeats: on every stream whose hello asked for them, the server sends
// a WatchHeartbeat (the head revision) every `heartbeat_interval`, so a
// proxy notices a connection that silently stopped delivering (blackholed)
// within a few heartbeats, not at gRPC keepalive's pace, and reconnects.
#ifndef WARDEN_CONTROLPLANE_DISTRIBUTION_DISTRIBUTION_H_
#define WARDEN_CONTROLPLANE_DISTRIBUTION_DISTRIBUTION_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/ca/ca.h"
#include "controlplane/store/store.h"
#include "proto/warden/v1/control.grpc.pb.h"

namespace warden::controlplane::distribution {

class Distributor final
    : public warden::v1::BundleDistribution::CallbackService {
 public:
  // None is owned; all must outlive this. `fleet_store` may be null (the
  // fleet view is then in memory only). The gRPC server this is registered
  // with must be shut down before this is destroyed. Streams that ask for
  // heartbeats get one every `heartbeat_interval`.
  Distributor(const bundles::Bundles* bundles, const ca::Authority* authority,
              store::Store* fleet_store,
              absl::Duration heartbeat_interval = kHeartbeatInterval);
  ~Distributor() override;

  Distributor(const Distributor&) = delete;
  Distributor& operator=(const Distributor&) = delete;

  grpc::ServerBidiReactor<warden::v1::WatchRequest, warden::v1::WatchResponse>*
  Watch(grpc::CallbackServerContext* context) override;

  // Publish re-reads the head revision and sends it to every stream that
  // does not run it yet. A stream with a bundle in flight gets the newest
  // head once it ACKs or NACKs (at most one outstanding bundle per stream;
  // the latest wins, intermediate revisions are skipped). Call after every
  // committed push or rollback; calling it without a change is harmless.
  void Publish();

  // What every proxy last told us, `environment` only (empty: all), sorted
  // by environment then proxy_id; disconnected proxies stay with
  // connected = false. current_revision is the head this knows about.
  warden::v1::GetFleetStatusResponse FleetStatus(
      const std::string& environment) const;

  // Whether the proxy `environment`/`proxy_id` ever opened a stream here.
  bool Knows(const std::string& environment,
             const std::string& proxy_id) const;

  // A replica that cannot serve current policy (a cluster replica cut off
  // from etcd) says so through `healthy`: while it returns a reason, new
  // Watch streams are refused UNAVAILABLE with it and open streams get no
  // heartbeats, so their proxies presume them dead and move to another
  // replica. Empty: healthy. Unset: always healthy.
  void SetHealthCheck(std::function<std::string()> unhealthy_reason);

  // ACKs/NACKs whose nonce was not the outstanding one (ignored).
  uint64_t stale_responses() const;
  // Open Watch streams (hello received or not).
  size_t open_streams() const;
  // Heartbeats handed to gRPC so far (all streams).
  uint64_t heartbeats_sent() const;

  // How often a stream that asked for heartbeats gets one. A proxy
  // presumes a stream dead after three missed ones (15 s by default,
  // dataplane control_plane.watch_silence_timeout).
  static constexpr absl::Duration kHeartbeatInterval = absl::Seconds(5);

 private:
  class Stream;
  friend class Stream;

  struct FleetEntry {
    warden::v1::ProxyStatus status;
    int open_streams = 0;
  };
  using FleetKey = std::pair<std::string, std::string>;  // (env, proxy_id)

  // Loads the head from `bundles_` and keeps it if newer than head_.
  void RefreshHead() ABSL_LOCKS_EXCLUDED(mu_);
  // Sends a heartbeat on every stream that asked for them, every
  // heartbeat_interval_, until stop_heartbeats_.
  void HeartbeatLoop();
  // Writes `status` to the fleet column (best effort: logged on failure).
  void PersistLocked(const warden::v1::ProxyStatus& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const bundles::Bundles* const bundles_;
  const ca::Authority* const authority_;
  store::Store* const fleet_store_;

  mutable absl::Mutex mu_;
  std::shared_ptr<const warden::v1::SignedBundle> head_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<Stream*> streams_ ABSL_GUARDED_BY(mu_);
  std::map<FleetKey, FleetEntry> fleet_ ABSL_GUARDED_BY(mu_);
  uint64_t next_nonce_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t stale_responses_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t heartbeats_sent_ ABSL_GUARDED_BY(mu_) = 0;

  std::function<std::string()> unhealthy_reason_ ABSL_GUARDED_BY(mu_);
  // The reason unhealthy_reason_ gives now; "" when healthy or unset.
  std::string UnhealthyReason() const ABSL_LOCKS_EXCLUDED(mu_);
  const absl::Duration heartbeat_interval_;
  absl::Notification stop_heartbeats_;
  std::thread heartbeat_thread_;
};

}  // namespace warden::controlplane::distribution

#endif  // WARDEN_CONTROLPLANE_DISTRIBUTION_DISTRIBUTION_H_
