// Socket addresses: from configuration text, of a connected peer, and the
// start of a non-blocking connect.
#ifndef WARDEN_DATAPLANE_NET_ADDRESS_H_
#define WARDEN_DATAPLANE_NET_ADDRESS_H_

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>

namespace warden::dataplane::net {

// ParseAddress fills `out` (and `len`) for a literal IPv4 or IPv6 address
// and `port`; false for anything else (a host name), which needs a
// Resolver.
bool ParseAddress(const std::string& host, uint16_t port, sockaddr_storage* out,
                  socklen_t* len);

// A connected socket's peer: its numeric host (IPv4 or IPv6) and port;
// nullopt when the socket has none (closed, or not IP).
struct Peer {
  std::string host;
  uint16_t port = 0;
};
std::optional<Peer> PeerOf(int fd);

// Starts a non-blocking connect to the literal address `host`:`port`: the
// socket (SOCK_NONBLOCK, SOCK_CLOEXEC), whose connect completes as
// EPOLLOUT (then read SO_ERROR), or -1 when `host` is not a literal
// address or the connect failed at once.
int StartConnect(const std::string& host, uint16_t port);

}  // namespace warden::dataplane::net

#endif  // WARDEN_DATAPLANE_NET_ADDRESS_H_
