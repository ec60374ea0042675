// Socket addresses from configuration text.
#ifndef WARDEN_DATAPLANE_NET_ADDRESS_H_
#define WARDEN_DATAPLANE_NET_ADDRESS_H_

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace warden::dataplane::net {

// ParseAddress fills `out` (and `len`) for a literal IPv4 or IPv6 address
// and `port`; false for anything else (a host name), which needs a
// Resolver.
bool ParseAddress(const std::string& host, uint16_t port, sockaddr_storage* out,
                  socklen_t* len);

}  // namespace warden::dataplane::net

#endif  // WARDEN_DATAPLANE_NET_ADDRESS_H_
