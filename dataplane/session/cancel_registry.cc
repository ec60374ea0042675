#include "dataplane/session/cancel_registry.h"

#include <cstring>

#include "common/crypto.h"

namespace warden::dataplane::session {

std::optional<std::pair<int32_t, int32_t>> CancelRegistry::Allocate() {
  for (int attempt = 0; attempt < 64; ++attempt) {
    auto bytes = crypto::RandomBytes(8);  // outside the lock.
    if (!bytes.ok()) return std::nullopt;
    int32_t pid = 0, secret = 0;
    std::memcpy(&pid, bytes->data(), 4);
    std::memcpy(&secret, bytes->data() + 4, 4);
    pid &= 0x7fffffff;  // looks like a process id: positive.
    if (pid == 0) continue;
    absl::MutexLock lock(&mu_);
    if (entries_.contains(pid)) continue;
    entries_[pid] = Entry{secret, std::nullopt};
    return std::make_pair(pid, secret);
  }
  return std::nullopt;
}

void CancelRegistry::Register(int32_t pid, int32_t secret,
                              CancelTarget target) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(pid);
  if (it != entries_.end() && it->second.secret == secret) {
    it->second.target = std::move(target);
  }
}

void CancelRegistry::Release(int32_t pid, int32_t secret) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(pid);
  if (it != entries_.end() && it->second.secret == secret) entries_.erase(it);
}

std::optional<CancelTarget> CancelRegistry::Lookup(int32_t pid,
                                                   int32_t secret) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(pid);
  if (it == entries_.end() ||
      !crypto::ConstantTimeEquals(
          absl::string_view(reinterpret_cast<const char*>(&it->second.secret),
                            4),
          absl::string_view(reinterpret_cast<const char*>(&secret), 4))) {
    return std::nullopt;
  }
  return it->second.target;
}

size_t CancelRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace warden::dataplane::session
