// Addresses: literal ones parsed, a connected peer named, and a
// non-blocking connect that completes on a real loopback listener (and is
// refused for a host name, which needs the resolver).
#include "dataplane/net/address.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/unit/dataplane/net/loopback.h"

namespace warden::dataplane::net {
namespace {

using Listener = testing::LoopbackListener;

TEST(AddressTest, LiteralAddressesOnly) {
  sockaddr_storage out{};
  socklen_t len = 0;
  EXPECT_TRUE(ParseAddress("127.0.0.1", 5432, &out, &len));
  EXPECT_EQ(out.ss_family, AF_INET);
  EXPECT_TRUE(ParseAddress("::1", 5432, &out, &len));
  EXPECT_EQ(out.ss_family, AF_INET6);
  EXPECT_FALSE(ParseAddress("localhost", 5432, &out, &len));
}

TEST(AddressTest, AConnectCompletesAndBothEndsNameTheirPeer) {
  Listener listener;
  const int fd = StartConnect("127.0.0.1", listener.port);
  ASSERT_GE(fd, 0);
  pollfd p{fd, POLLOUT, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  int error = -1;
  socklen_t len = sizeof(error);
  ASSERT_EQ(getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len), 0);
  EXPECT_EQ(error, 0);
  const int accepted = accept(listener.fd, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  const auto server_side = PeerOf(fd);
  ASSERT_TRUE(server_side.has_value());
  EXPECT_EQ(server_side->host, "127.0.0.1");
  EXPECT_EQ(server_side->port, listener.port);
  const auto client_side = PeerOf(accepted);
  ASSERT_TRUE(client_side.has_value());
  EXPECT_EQ(client_side->host, "127.0.0.1");
  EXPECT_NE(client_side->port, 0);
  close(accepted);
  close(fd);
}

TEST(AddressTest, AHostNameOrAnUnconnectedSocketGivesNothing) {
  EXPECT_EQ(StartConnect("localhost", 5432), -1);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_FALSE(PeerOf(fd).has_value());
  close(fd);
  EXPECT_FALSE(PeerOf(-1).has_value());
}

}  // namespace
}  // namespace warden::dataplane::net
