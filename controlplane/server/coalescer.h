// Runs an action on its own thread after Request(), coalescing the
// requests that arrive while it waits or runs: a burst of N requests costs
// one or two runs, never N.
#ifndef WARDEN_CONTROLPLANE_SERVER_COALESCER_H_
#define WARDEN_CONTROLPLANE_SERVER_COALESCER_H_

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace warden::controlplane::server {

class Coalescer {
 public:
  // `delay`: how long a request waits for others to join it.
  Coalescer(absl::Duration delay, std::function<void()> action);
  ~Coalescer();  // Stop()

  // Thread-safe; returns at once. `urgent`: run without waiting for the
  // rest of a burst (e.g. a user was deactivated).
  void Request(bool urgent = false);
  // Runs a pending action, then ends the thread. Idempotent.
  void Stop();

 private:
  void Loop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool RunNow() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration delay_;
  const std::function<void()> action_;
  absl::Mutex mu_;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool urgent_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace warden::controlplane::server

#endif  // WARDEN_CONTROLPLANE_SERVER_COALESCER_H_
