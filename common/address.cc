#include "common/address.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

#include <arpa/inet.h>

namespace warden {

bool IsIpAddress(const std::string& host) {
  in_addr v4;
  in6_addr v6;
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 ||
         inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

std::vector<std::string> SplitAddressList(const std::string& list) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) out.emplace_back(item);
  }
  return out;
}

AddressRing::AddressRing(const std::string& list)
    : addresses_([&list] {
        std::vector<std::string> a = SplitAddressList(list);
        if (a.empty()) a.push_back(list);  // callers validated; keep one
        return a;
      }()) {}

std::string AddressRing::Current() const {
  absl::MutexLock lock(&mu_);
  return addresses_[current_];
}

std::string AddressRing::Failed(const std::string& failed) {
  absl::MutexLock lock(&mu_);
  if (addresses_[current_] == failed) {
    current_ = (current_ + 1) % addresses_.size();
  }
  return addresses_[current_];
}

}  // namespace warden
