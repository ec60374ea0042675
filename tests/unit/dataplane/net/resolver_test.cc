#include "dataplane/net/resolver.h"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "dataplane/net/address.h"
#include "dataplane/net/event_loop.h"
#include "gtest/gtest.h"

namespace warden::dataplane::net {
namespace {

// A loop that stops itself if a test's answers never come, so a broken
// resolver fails the assertions instead of hanging the test.
std::shared_ptr<EventLoop> NewLoop() {
  auto loop = std::make_shared<EventLoop>();
  EXPECT_TRUE(loop->Init().ok());
  loop->AddTimer(std::chrono::seconds(20), [l = loop.get()] { l->Stop(); });
  return loop;
}

// A lookup that counts its calls and holds "slow.test" until released.
struct FakeLookup {
  absl::Notification slow_started;
  absl::Notification release;
  std::atomic<int> calls{0};

  Resolver::LookupFn Fn() {
    return [this](const std::string& host,
                  uint16_t port) -> absl::StatusOr<Addresses> {
      ++calls;
      if (host == "slow.test") {
        slow_started.Notify();
        release.WaitForNotification();
      }
      if (host == "broken.test") {
        return absl::UnavailableError("Temporary failure in name resolution");
      }
      return Addresses{{"127.0.0.1", port}};
    };
  }
};

// Resolves `host` and runs the loop until the answer arrived.
absl::StatusOr<Addresses> ResolveOnLoop(Resolver& resolver,
                                        const std::string& host,
                                        bool* in_loop_thread = nullptr) {
  auto loop = NewLoop();
  absl::StatusOr<Addresses> answer = absl::UnknownError("no answer");
  resolver.Resolve(host, 5432, loop,
                   [&, l = loop.get()](absl::StatusOr<Addresses> result) {
                     answer = std::move(result);
                     if (in_loop_thread != nullptr) {
                       *in_loop_thread = l->InLoopThread();
                     }
                     l->Stop();
                   });
  loop->Run();
  return answer;
}

bool IsLoopback(const std::string& address) {
  return absl::StartsWith(address, "127.") || address == "::1";
}

TEST(ResolverTest, LiteralAddressesAreTheirOwnAnswerWithoutALookup) {
  FakeLookup fake;
  Resolver resolver({/*threads=*/1, /*max_queued=*/1, fake.Fn()});
  bool in_loop_thread = false;
  auto v4 = ResolveOnLoop(resolver, "127.0.0.1", &in_loop_thread);
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(*v4, (Addresses{{"127.0.0.1", 5432}}));
  EXPECT_TRUE(in_loop_thread);
  auto v6 = ResolveOnLoop(resolver, "::1");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(*v6, (Addresses{{"::1", 5432}}));
  EXPECT_EQ(fake.calls.load(), 0);
}

TEST(ResolverTest, LocalhostResolvesToLoopbackOnTheCallersLoop) {
  Resolver resolver;  // the real getaddrinfo; /etc/hosts answers.
  bool in_loop_thread = false;
  auto answer = ResolveOnLoop(resolver, "localhost", &in_loop_thread);
  ASSERT_TRUE(answer.ok()) << answer.status();
  ASSERT_FALSE(answer->empty());
  for (const auto& [address, port] : *answer) {
    EXPECT_TRUE(IsLoopback(address)) << address;
    EXPECT_EQ(port, 5432);
    sockaddr_storage addr{};
    socklen_t len = 0;
    EXPECT_TRUE(ParseAddress(address, port, &addr, &len)) << address;
  }
  EXPECT_TRUE(in_loop_thread);
}

TEST(ResolverTest, InvalidNamesFailAtOnceWithoutAQuery) {
  // RFC 6761: names under .invalid never resolve, so none is looked up (no
  // DNS query leaves the machine).
  FakeLookup fake;
  Resolver resolver({/*threads=*/1, /*max_queued=*/1, fake.Fn()});
  for (const char* name : {"no-such-host.invalid", "db.INVALID.", "invalid"}) {
    auto answer = ResolveOnLoop(resolver, name);
    EXPECT_EQ(answer.status().code(), absl::StatusCode::kNotFound) << name;
    EXPECT_FALSE(answer.status().message().empty());
  }
  EXPECT_EQ(fake.calls.load(), 0);
  // Likewise through the default (getaddrinfo) lookup.
  Resolver real;
  EXPECT_EQ(ResolveOnLoop(real, "warden-test.invalid").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ResolverTest, LookupErrorsReachTheCallback) {
  FakeLookup fake;
  Resolver resolver({/*threads=*/2, /*max_queued=*/8, fake.Fn()});
  auto answer = ResolveOnLoop(resolver, "broken.test");
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(answer.status().message(), "Temporary failure in name resolution");
  auto fine = ResolveOnLoop(resolver, "fine.test");
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ(*fine, (Addresses{{"127.0.0.1", 5432}}));
  EXPECT_EQ(fake.calls.load(), 2);
}

TEST(ResolverTest, FullQueueFailsFastWithResourceExhausted) {
  FakeLookup fake;
  Resolver resolver({/*threads=*/1, /*max_queued=*/1, fake.Fn()});
  auto loop = NewLoop();
  std::vector<std::string> order;
  std::map<std::string, absl::Status> results;
  auto record = [&](const std::string& name) {
    return [&, name](absl::StatusOr<Addresses> result) {
      order.push_back(name);
      results[name] = result.status();
      // The refusal came while the only thread was still busy: let it go.
      if (name == "refused") fake.release.Notify();
      if (results.size() == 3) loop->Stop();
    };
  };
  resolver.Resolve("slow.test", 5432, loop, record("running"));
  fake.slow_started.WaitForNotification();  // the thread holds it.
  resolver.Resolve("queued.test", 5432, loop, record("queued"));
  resolver.Resolve("refused.test", 5432, loop, record("refused"));
  loop->Run();
  // (Had no refusal come, the thread would still be held.)
  if (!fake.release.HasBeenNotified()) fake.release.Notify();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(order.front(), "refused");
  EXPECT_EQ(results["refused"].code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(results["refused"].message(), "too many"))
      << results["refused"];
  EXPECT_TRUE(results["running"].ok()) << results["running"];
  EXPECT_TRUE(results["queued"].ok()) << results["queued"];
  EXPECT_EQ(fake.calls.load(), 2);  // the refused name was never looked up.
}

TEST(ResolverTest, DestructionFailsQueuedLookupsAndFinishesTheRunningOne) {
  FakeLookup fake;
  auto resolver = std::make_unique<Resolver>(
      Resolver::Options{/*threads=*/1, /*max_queued=*/4, fake.Fn()});
  auto loop = NewLoop();
  std::map<std::string, int> calls;
  std::map<std::string, absl::Status> results;
  auto record = [&](const std::string& name) {
    return [&, name](absl::StatusOr<Addresses> result) {
      ++calls[name];
      results[name] = result.status();
      // Both queued lookups were failed while the running one still held
      // the thread (the destructor does not wait for it to fail them).
      if (results.count("a") && results.count("b") && !results.count("run")) {
        fake.release.Notify();
      }
      if (results.size() == 3) loop->Stop();
    };
  };
  resolver->Resolve("slow.test", 5432, loop, record("run"));
  fake.slow_started.WaitForNotification();
  resolver->Resolve("a.test", 5432, loop, record("a"));
  resolver->Resolve("b.test", 5432, loop, record("b"));
  // The destructor joins the thread, which is held until the loop saw the
  // queued lookups fail: destroy on another thread.
  std::thread destroyer([&] { resolver.reset(); });
  loop->Run();
  // (Had the queued lookups not failed, the thread would still be held.)
  if (!fake.release.HasBeenNotified()) fake.release.Notify();
  destroyer.join();
  EXPECT_EQ(resolver, nullptr);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results["a"].code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(results["b"].code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(results["run"].ok()) << results["run"];
  EXPECT_EQ(calls,
            (std::map<std::string, int>{{"a", 1}, {"b", 1}, {"run", 1}}));
  EXPECT_EQ(fake.calls.load(), 1);  // queued names were never looked up.
}

// Set when destroyed: tells that a callback was dropped.
class Sentinel {
 public:
  explicit Sentinel(absl::Notification* destroyed) : destroyed_(destroyed) {}
  Sentinel(const Sentinel&) = delete;
  Sentinel& operator=(const Sentinel&) = delete;
  ~Sentinel() { destroyed_->Notify(); }

 private:
  absl::Notification* destroyed_;
};

TEST(ResolverTest, KeepsTheLoopAliveUntilItAnswersAndAGoneLoopDropsIt) {
  FakeLookup fake;
  Resolver resolver({/*threads=*/1, /*max_queued=*/1, fake.Fn()});
  auto loop = NewLoop();
  std::weak_ptr<EventLoop> weak = loop;
  absl::Notification dropped;
  std::atomic<bool> called{false};
  resolver.Resolve("slow.test", 5432, loop,
                   [&called, sentinel = std::make_shared<Sentinel>(&dropped)](
                       absl::StatusOr<Addresses>) { called = true; });
  fake.slow_started.WaitForNotification();
  loop.reset();  // the worker's end: only the resolver holds the loop now.
  EXPECT_FALSE(weak.expired());
  fake.release.Notify();
  // The answer goes to a loop that will never run: it is destroyed with it.
  ASSERT_TRUE(dropped.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_TRUE(weak.expired());
  EXPECT_FALSE(called.load());
}

}  // namespace
}  // namespace warden::dataplane::net
