// A session's cancel key: the client gets a key of the proxy's, never the
// upstream's; the registry maps it to the upstream backend and the session;
// a second upstream key keeps the client's; released, it cancels nothing.
#include "dataplane/session/cancel_key.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "dataplane/net/event_loop.h"
#include "dataplane/pgwire/messages.h"
#include "gtest/gtest.h"
#include "tests/unit/dataplane/net/loopback.h"

namespace warden::dataplane::session {
namespace {

// The key a BackendKeyData message carries.
pgwire::BackendKeyData KeyOf(const std::string& message) {
  EXPECT_GE(message.size(), 13u);
  EXPECT_EQ(message[0], 'K');
  auto key = pgwire::ParseBackendKeyData(message.substr(5));
  EXPECT_TRUE(key.ok()) << key.status();
  return key.ok() ? *key : pgwire::BackendKeyData{};
}

TEST(CancelKeyTest, TheClientGetsTheProxysKeyMappedToTheUpstreams) {
  CancelRegistry registry;
  CancelKey key(&registry);
  EXPECT_FALSE(key.has_upstream_key());
  key.SetUpstream("127.0.0.1", 5432);
  int notified = 0;
  auto sent = key.OnUpstreamKey({4242, 777}, [&notified] { ++notified; });
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_TRUE(key.has_upstream_key());
  const pgwire::BackendKeyData ours = KeyOf(*sent);
  EXPECT_FALSE(ours.pid == 4242 && ours.secret == 777);
  const auto target = registry.Lookup(ours.pid, ours.secret);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->host, "127.0.0.1");
  EXPECT_EQ(target->port, 5432);
  EXPECT_EQ(target->upstream_pid, 4242);
  EXPECT_EQ(target->upstream_secret, 777);
  ASSERT_TRUE(target->notify_session);
  target->notify_session();
  EXPECT_EQ(notified, 1);
  // The upstream's own key cancels nothing through the proxy.
  EXPECT_FALSE(registry.Lookup(4242, 777).has_value());
  // Neither does the right pid with another secret.
  EXPECT_FALSE(registry.Lookup(ours.pid, ours.secret ^ 1).has_value());
}

TEST(CancelKeyTest, ASecondUpstreamKeyKeepsTheClientsKey) {
  CancelRegistry registry;
  CancelKey key(&registry);
  key.SetUpstream("::1", 6432);
  int first = 0, second = 0;
  auto a = key.OnUpstreamKey({1, 2}, [&first] { ++first; });
  auto b = key.OnUpstreamKey({3, 4}, [&second] { ++second; });
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  const pgwire::BackendKeyData ours = KeyOf(*b);
  const auto target = registry.Lookup(ours.pid, ours.secret);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->upstream_pid, 3);
  EXPECT_EQ(target->upstream_secret, 4);
  target->notify_session();
  EXPECT_EQ(first, 1);  // the session's first notifier is kept
  EXPECT_EQ(second, 0);
  EXPECT_EQ(registry.size(), 1u);
}

TEST(CancelKeyTest, ReleasedOrDestroyedItCancelsNothing) {
  CancelRegistry registry;
  pgwire::BackendKeyData ours;
  {
    CancelKey key(&registry);
    auto sent = key.OnUpstreamKey({5, 6}, nullptr);
    ASSERT_TRUE(sent.ok());
    ours = KeyOf(*sent);
    ASSERT_TRUE(registry.Lookup(ours.pid, ours.secret).has_value());
    key.Release();
    EXPECT_FALSE(registry.Lookup(ours.pid, ours.secret).has_value());
    key.Release();  // twice is harmless
    sent = key.OnUpstreamKey({5, 6}, nullptr);  // a new key after release
    ASSERT_TRUE(sent.ok());
    ours = KeyOf(*sent);
    ASSERT_TRUE(registry.Lookup(ours.pid, ours.secret).has_value());
  }
  EXPECT_FALSE(registry.Lookup(ours.pid, ours.secret).has_value());
  EXPECT_EQ(registry.size(), 0u);
}

// A CancelRequest from a client, on a connection of its own, reaches the
// session on its loop and the upstream backend (a real loopback socket
// here, standing in for PostgreSQL); a key nobody holds reaches nothing
// and the requester is let go at once.
TEST(CancelKeyTest, ACancelRequestReachesTheSessionAndTheUpstream) {
  net::testing::LoopbackListener upstream;
  auto loop = std::make_shared<net::EventLoop>();
  ASSERT_TRUE(loop->Init().ok());
  std::thread runner([&loop] { loop->Run(); });

  CancelRegistry registry;
  CancelKey key(&registry);
  key.SetUpstream("127.0.0.1", upstream.port);
  std::atomic<int> session_told{0};
  std::atomic<bool> on_session_loop{false};
  auto sent = key.OnUpstreamKey({4242, 777}, loop.get(), [&] {
    on_session_loop = loop->InLoopThread();
    ++session_told;
  });
  ASSERT_TRUE(sent.ok()) << sent.status();
  const pgwire::BackendKeyData ours = KeyOf(*sent);

  std::atomic<bool> unknown_done{false};
  EXPECT_FALSE(ForwardCancelRequest(registry, loop.get(), ours.pid,
                                    ours.secret ^ 1,
                                    [&] { unknown_done = true; }));
  EXPECT_TRUE(unknown_done);

  std::atomic<bool> done{false};
  loop->Post([&] {
    EXPECT_TRUE(ForwardCancelRequest(registry, loop.get(), ours.pid,
                                     ours.secret, [&] { done = true; }));
  });
  // What the upstream receives: the 16-byte CancelRequest with ITS key.
  const int conn = accept(upstream.fd, nullptr, nullptr);
  ASSERT_GE(conn, 0);
  char request[16];
  size_t got = 0;
  while (got < sizeof(request)) {
    const ssize_t n = read(conn, request + got, sizeof(request) - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(conn);
  ASSERT_EQ(got, sizeof(request));
  uint32_t words[4];
  std::memcpy(words, request, sizeof(words));
  EXPECT_EQ(ntohl(words[0]), 16u);
  EXPECT_EQ(ntohl(words[1]), 80877102u);  // the CancelRequest code
  EXPECT_EQ(static_cast<int32_t>(ntohl(words[2])), 4242);
  EXPECT_EQ(static_cast<int32_t>(ntohl(words[3])), 777);
  for (int i = 0; i < 500 && (!done || session_told == 0); ++i) {
    usleep(10000);
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(session_told, 1);
  EXPECT_TRUE(on_session_loop);
  loop->Stop();
  runner.join();
}

}  // namespace
}  // namespace warden::dataplane::session
