// A listening TCP socket on 127.0.0.1 on a port the kernel picks, for unit
// tests that need a real peer to connect to; closed with the object.
#ifndef WARDEN_TESTS_UNIT_DATAPLANE_NET_LOOPBACK_H_
#define WARDEN_TESTS_UNIT_DATAPLANE_NET_LOOPBACK_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace warden::dataplane::net::testing {

struct LoopbackListener {
  LoopbackListener() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd, 4);
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~LoopbackListener() { close(fd); }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  int fd = -1;
  uint16_t port = 0;
};

}  // namespace warden::dataplane::net::testing

#endif  // WARDEN_TESTS_UNIT_DATAPLANE_NET_LOOPBACK_H_
