// Maps the BackendKeyData the proxy hands to clients onto the upstream's, so
// a CancelRequest (which arrives on a fresh connection, possibly on another
// worker) reaches the right backend, and the session that owns the key (a
// statement Warden holds, e.g. for the audit trail's acknowledgement, has
// not reached the backend: its session withdraws it). Clients never see
// upstream keys.
#ifndef WARDEN_DATAPLANE_SESSION_CANCEL_REGISTRY_H_
#define WARDEN_DATAPLANE_SESSION_CANCEL_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace warden::dataplane::session {

struct CancelTarget {
  std::string host;
  uint16_t port = 0;
  int32_t upstream_pid = 0;
  int32_t upstream_secret = 0;
  // Tells the owning session that its client cancelled (thread-safe: it
  // posts to the session's loop); may be empty.
  std::function<void()> notify_session;
};

// Thread-safe.
class CancelRegistry {
 public:
  // Allocate picks a fresh random (pid, secret) pair not in use and reserves
  // it; Register then attaches the upstream target once it is known.
  // Returns nullopt only if the CSPRNG fails (or after 64 collisions).
  std::optional<std::pair<int32_t, int32_t>> Allocate();
  void Register(int32_t pid, int32_t secret, CancelTarget target);
  void Release(int32_t pid, int32_t secret);
  // Lookup returns the target only if both pid and secret match.
  std::optional<CancelTarget> Lookup(int32_t pid, int32_t secret) const;
  size_t size() const;

 private:
  struct Entry {
    int32_t secret = 0;
    std::optional<CancelTarget> target;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int32_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_CANCEL_REGISTRY_H_
