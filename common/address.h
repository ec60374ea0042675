// Host names and addresses as the control plane's certificate names them.
#ifndef WARDEN_COMMON_ADDRESS_H_
#define WARDEN_COMMON_ADDRESS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace warden {

// True when `host` (no port, no brackets) is a literal IPv4 or IPv6
// address, e.g. "10.0.0.7" or "fd00::7"; false for names ("localhost").
bool IsIpAddress(const std::string& host);

// "a:7443, b:7443" → {"a:7443", "b:7443"}: the replicas of a control-plane
// cluster as one option or config value (blanks around commas ignored,
// empty items dropped).
std::vector<std::string> SplitAddressList(const std::string& list);

// The replicas of a control-plane cluster, one of which is in use: callers
// use Current() and, when a call finds it unreachable, Failed(it) moves on
// to the next (only if it is still the current one, so that several callers
// that saw the same failure move on once). Thread-safe.
class AddressRing {
 public:
  // `list` as SplitAddressList takes it; at least one address.
  explicit AddressRing(const std::string& list);
  std::string Current() const;
  // Moves on from `failed` if it is the current address; returns the
  // address now current.
  std::string Failed(const std::string& failed);
  size_t size() const { return addresses_.size(); }

 private:
  const std::vector<std::string> addresses_;
  mutable absl::Mutex mu_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace warden

#endif  // WARDEN_COMMON_ADDRESS_H_
