#include "dataplane/session/cancel_registry.h"

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace warden::dataplane::session {
namespace {

CancelTarget Target(std::string host, uint16_t port, int32_t pid,
                    int32_t secret) {
  CancelTarget t;
  t.host = std::move(host);
  t.port = port;
  t.upstream_pid = pid;
  t.upstream_secret = secret;
  return t;
}

TEST(CancelRegistryTest, AllocateGivesPositiveDistinctPids) {
  CancelRegistry registry;
  std::set<int32_t> pids;
  std::set<int32_t> secrets;
  constexpr int kCount = 1000;
  for (int i = 0; i < kCount; ++i) {
    const auto [pid, secret] = *registry.Allocate();
    EXPECT_GT(pid, 0);
    pids.insert(pid);
    secrets.insert(secret);
  }
  EXPECT_EQ(pids.size(), static_cast<size_t>(kCount));
  EXPECT_EQ(registry.size(), static_cast<size_t>(kCount));
  // Secrets are random too: 1000 32-bit values collide with probability
  // ~1e-4, so allow a couple of repeats but not a constant.
  EXPECT_GT(secrets.size(), static_cast<size_t>(kCount - 3));
}

TEST(CancelRegistryTest, LookupBeforeRegisterIsEmpty) {
  CancelRegistry registry;
  const auto [pid, secret] = *registry.Allocate();
  EXPECT_EQ(registry.size(), 1u);
  EXPECT_FALSE(registry.Lookup(pid, secret).has_value());
}

TEST(CancelRegistryTest, LookupAfterRegisterReturnsTarget) {
  CancelRegistry registry;
  const auto [pid, secret] = *registry.Allocate();
  registry.Register(pid, secret, Target("db.internal", 5433, 4242, -17));
  const auto found = registry.Lookup(pid, secret);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->host, "db.internal");
  EXPECT_EQ(found->port, 5433);
  EXPECT_EQ(found->upstream_pid, 4242);
  EXPECT_EQ(found->upstream_secret, -17);
}

TEST(CancelRegistryTest, RegisterAgainReplacesTarget) {
  CancelRegistry registry;
  const auto [pid, secret] = *registry.Allocate();
  registry.Register(pid, secret, Target("a", 1, 1, 1));
  registry.Register(pid, secret, Target("b", 2, 2, 2));
  const auto found = registry.Lookup(pid, secret);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->host, "b");
  EXPECT_EQ(found->upstream_pid, 2);
  EXPECT_EQ(registry.size(), 1u);
}

TEST(CancelRegistryTest, WrongSecretOrPidFindsNothing) {
  CancelRegistry registry;
  const auto [pid, secret] = *registry.Allocate();
  registry.Register(pid, secret, Target("db", 5432, 7, 8));
  EXPECT_FALSE(registry.Lookup(pid, secret ^ 1).has_value());
  EXPECT_FALSE(registry.Lookup(pid, secret + 0x10000).has_value());
  const int32_t other_pid = pid == 1 ? 2 : pid - 1;
  EXPECT_FALSE(registry.Lookup(other_pid, secret).has_value());
  EXPECT_TRUE(registry.Lookup(pid, secret).has_value());
}

TEST(CancelRegistryTest, ReleaseRemovesEntry) {
  CancelRegistry registry;
  const auto [pid, secret] = *registry.Allocate();
  const auto [pid2, secret2] = *registry.Allocate();
  registry.Register(pid, secret, Target("db", 5432, 7, 8));
  registry.Register(pid2, secret2, Target("db2", 5432, 9, 10));
  EXPECT_EQ(registry.size(), 2u);

  registry.Release(pid, secret);
  EXPECT_EQ(registry.size(), 1u);
  EXPECT_FALSE(registry.Lookup(pid, secret).has_value());
  // The other entry is untouched.
  const auto other = registry.Lookup(pid2, secret2);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->host, "db2");

  // Releasing twice is harmless.
  registry.Release(pid, secret);
  EXPECT_EQ(registry.size(), 1u);
  registry.Release(pid2, secret2);
  EXPECT_EQ(registry.size(), 0u);
}

TEST(CancelRegistryTest, ReleaseWithWrongSecretKeepsEntry) {
  CancelRegistry registry;
  const auto [pid, secret] = *registry.Allocate();
  registry.Register(pid, secret, Target("db", 5432, 7, 8));
  registry.Release(pid, secret ^ 1);
  EXPECT_EQ(registry.size(), 1u);
  EXPECT_TRUE(registry.Lookup(pid, secret).has_value());
}

TEST(CancelRegistryTest, RegisterWithWrongSecretDoesNotAttach) {
  CancelRegistry registry;
  const auto [pid, secret] = *registry.Allocate();
  registry.Register(pid, secret ^ 1, Target("evil", 1, 2, 3));
  EXPECT_FALSE(registry.Lookup(pid, secret).has_value());
  EXPECT_FALSE(registry.Lookup(pid, secret ^ 1).has_value());
  EXPECT_EQ(registry.size(), 1u);

  // A correct Register afterwards still works.
  registry.Register(pid, secret, Target("good", 5432, 4, 5));
  const auto found = registry.Lookup(pid, secret);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->host, "good");
}

TEST(CancelRegistryTest, RegisterUnallocatedPidCreatesNothing) {
  CancelRegistry registry;
  registry.Register(12345, 678, Target("db", 5432, 1, 2));
  EXPECT_EQ(registry.size(), 0u);
  EXPECT_FALSE(registry.Lookup(12345, 678).has_value());
}

TEST(CancelRegistryTest, ConcurrentUseStaysConsistent) {
  CancelRegistry registry;
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&registry, &failures, t] {
      const std::string host = absl::StrCat("host-", t);
      std::vector<std::pair<int32_t, int32_t>> held;
      for (int i = 0; i < kRounds; ++i) {
        const auto [pid, secret] = *registry.Allocate();
        if (pid <= 0) ++failures;
        if (registry.Lookup(pid, secret).has_value()) ++failures;
        registry.Register(pid, secret,
                          Target(host, static_cast<uint16_t>(t + 1), i, t));
        const auto found = registry.Lookup(pid, secret);
        if (!found.has_value() || found->host != host || found->port != t + 1 ||
            found->upstream_pid != i || found->upstream_secret != t) {
          ++failures;
        }
        held.emplace_back(pid, secret);
        // Release some entries right away and keep the rest for a while, so
        // the map both grows and shrinks while other threads use it.
        if (i % 3 == 0) {
          registry.Release(pid, secret);
          if (registry.Lookup(pid, secret).has_value()) ++failures;
          held.pop_back();
        }
      }
      for (const auto& [pid, secret] : held) {
        const auto found = registry.Lookup(pid, secret);
        if (!found.has_value() || found->host != host) ++failures;
        registry.Release(pid, secret);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(registry.size(), 0u);
}

TEST(CancelRegistryTest, ACancelReachesTheOwningSessionOnlyWithTheRightKey) {
  CancelRegistry registry;
  const auto [pid, secret] = *registry.Allocate();
  int told = 0;
  CancelTarget target = Target("127.0.0.1", 5432, 77, 88);
  target.notify_session = [&told] { ++told; };
  registry.Register(pid, secret, target);
  EXPECT_FALSE(registry.Lookup(pid, secret + 1).has_value());
  const auto found = registry.Lookup(pid, secret);
  ASSERT_TRUE(found.has_value());
  ASSERT_TRUE(static_cast<bool>(found->notify_session));
  found->notify_session();
  EXPECT_EQ(told, 1);
  registry.Release(pid, secret);
  EXPECT_FALSE(registry.Lookup(pid, secret).has_value());
}

}  // namespace
}  // namespace warden::dataplane::session
