// The proxy's side of policy distribution: watches warden-control for
// signed policy bundles (BundleDistribution.Watch), verifies each one
// (trusted Ed25519 key, signature, digests, revision order; policy/bundle),
// hands it to the proxy to swap in, persists it as last-known-good, and
// ACKs or NACKs it. While the control plane is away it keeps the bundle in
// force and reconnects with backoff; at start it re-verifies the
// last-known-good bundle from disk, so a restarted proxy serves without the
// control plane.
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
#include "policy/bundle/bundle.h"
#include "proto/warden/v1/policy.pb.h"

namespace grpc {
class ClientContext;
}

namespace warden::bundle_client {

struct Options {
  std::string address;      // warden-control, host:port.
  std::string ca_file;      // TLS to warden-control; empty: plaintext
                            // (loopback addresses only).
  std::vector<std::string> trusted_key_files;  // Ed25519 public keys (PEM).
  std::string state_dir;    // where last-known-good is kept.
  std::string proxy_id;     // as reported in the fleet view.
  std::string environment;  // as reported in the fleet view.
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

 private:
  BundleClient(Options options, ApplyFn apply,
               policy::bundle::TrustedKeys keys);
  void Run();
  // One Watch stream, until it ends; returns why.
  absl::Status WatchOnce();
  // Verifies, applies and persists; the error is what gets NACKed.
  absl::Status Accept(const warden::v1::SignedBundle& signed_bundle);
  std::string LastKnownGoodPath() const;

  const Options options_;
  const ApplyFn apply_;
  const policy::bundle::TrustedKeys keys_;
  std::atomic<uint64_t> running_{0};
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  grpc::ClientContext* active_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Notification stopped_;
  std::thread thread_;
};

}  // namespace warden::bundle_client

#endif  // WARDEN_DATAPLANE_BUNDLE_CLIENT_BUNDLE_CLIENT_H_
