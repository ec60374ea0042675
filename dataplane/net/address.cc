#include "dataplane/net/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>

namespace warden::dataplane::net {

bool ParseAddress(const std::string& host, uint16_t port, sockaddr_storage* out,
                  socklen_t* len) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

std::optional<Peer> PeerOf(int fd) {
  sockaddr_storage remote{};
  socklen_t len = sizeof(remote);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &len) != 0) {
    return std::nullopt;
  }
  char host[INET6_ADDRSTRLEN] = {0};
  Peer peer;
  if (remote.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&remote);
    inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
    peer.port = ntohs(v4->sin_port);
  } else if (remote.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&remote);
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
    peer.port = ntohs(v6->sin6_port);
  } else {
    return std::nullopt;
  }
  peer.host = host;
  return peer;
}

int StartConnect(const std::string& host, uint16_t port) {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  if (!ParseAddress(host, port, &addr, &addr_len)) return -1;
  const int fd =
      socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 &&
      errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace warden::dataplane::net
