// A session's cancel key: the client gets a key of the proxy's, never the
// upstream's; the registry maps it to the upstream backend and the session;
// a second upstream key keeps the client's; released, it cancels nothing.
#include "dataplane/session/cancel_key.h"

#include <string>

#include "dataplane/pgwire/messages.h"
#include "gtest/gtest.h"

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

}  // namespace
}  // namespace warden::dataplane::session
