#include "controlplane/server/coalescer.h"

#include <utility>

namespace warden::controlplane::server {

Coalescer::Coalescer(absl::Duration delay, std::function<void()> action)
    : delay_(delay), action_(std::move(action)) {
  thread_ = std::thread([this] { Loop(); });
}

Coalescer::~Coalescer() { Stop(); }

void Coalescer::Request(bool urgent) {
  absl::MutexLock lock(&mu_);
  pending_ = true;
  urgent_ = urgent_ || urgent;
}

void Coalescer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool Coalescer::HasWork() const { return pending_ || stopping_; }

bool Coalescer::RunNow() const { return stopping_ || urgent_; }

void Coalescer::Loop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Coalescer::HasWork));
      if (!pending_ && stopping_) return;
      // Let the rest of a burst arrive (unless shutting down).
      const absl::Time until = absl::Now() + delay_;
      mu_.AwaitWithDeadline(absl::Condition(this, &Coalescer::RunNow), until);
      pending_ = false;
      urgent_ = false;
    }
    action_();
  }
}

}  // namespace warden::controlplane::server
