// Host names and addresses as the control plane's certificate names them.
#ifndef WARDEN_COMMON_ADDRESS_H_
#define WARDEN_COMMON_ADDRESS_H_

#include <string>

namespace warden {

// True when `host` (no port, no brackets) is a literal IPv4 or IPv6
// address, e.g. "10.0.0.7" or "fd00::7"; false for names ("localhost").
bool IsIpAddress(const std::string& host);

}  // namespace warden

#endif  // WARDEN_COMMON_ADDRESS_H_
