#include "dataplane/net/event_loop.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace warden::dataplane::net {
namespace {

using std::chrono::milliseconds;

TEST(EventLoopTest, TimersRunInDeadlineOrderAndCancelledOnesNever) {
  EventLoop loop;
  ASSERT_TRUE(loop.Init().ok());
  std::vector<int> order;
  loop.AddTimer(milliseconds(30), [&] { order.push_back(3); });
  loop.AddTimer(milliseconds(10), [&] { order.push_back(1); });
  const auto cancelled =
      loop.AddTimer(milliseconds(20), [&] { order.push_back(99); });
  loop.AddTimer(milliseconds(20), [&] { order.push_back(2); });
  loop.CancelTimer(cancelled);
  loop.AddTimer(milliseconds(50), [&] { loop.Stop(); });
  const auto start = std::chrono::steady_clock::now();
  loop.Run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(50));
}

TEST(EventLoopTest, PostFromAnotherThreadWakesTheLoop) {
  EventLoop loop;
  ASSERT_TRUE(loop.Init().ok());
  std::atomic<bool> ran{false};
  bool in_loop_thread = false;
  std::thread poster([&] {
    std::this_thread::sleep_for(milliseconds(20));
    loop.Post([&] {
      ran = true;
      in_loop_thread = loop.InLoopThread();
      loop.Stop();
    });
  });
  loop.Run();  // no timers: only the Post can end it.
  poster.join();
  EXPECT_TRUE(ran);
  EXPECT_TRUE(in_loop_thread);
}

TEST(EventLoopTest, DeferredTasksRunAfterTheBatchAndMayDeferMore) {
  EventLoop loop;
  ASSERT_TRUE(loop.Init().ok());
  std::vector<std::string> log;
  loop.Post([&] {
    loop.Defer([&] {
      log.push_back("deferred");
      loop.Defer([&] {
        log.push_back("nested");
        loop.Stop();
      });
    });
    log.push_back("posted");
  });
  loop.Run();
  EXPECT_EQ(log, (std::vector<std::string>{"posted", "deferred", "nested"}));
}

class Recorder : public EventLoop::Handler {
 public:
  explicit Recorder(int fd) : fd_(fd) {}
  void OnEvents(uint32_t events) override {
    if (events & EPOLLIN) {
      char buf[64];
      for (;;) {
        const ssize_t n = read(fd_, buf, sizeof(buf));
        if (n <= 0) break;
        data_.append(buf, n);
      }
      ++reads_;
    }
  }
  std::string data_;
  int reads_ = 0;

 private:
  int fd_;
};

TEST(EventLoopTest, WatchedSocketReportsEachArrivalOnceEdgeTriggered) {
  EventLoop loop;
  ASSERT_TRUE(loop.Init().ok());
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  Recorder recorder(fds[0]);
  ASSERT_TRUE(loop.Watch(fds[0], &recorder).ok());
  loop.AddTimer(milliseconds(10),
                [&] { ASSERT_EQ(write(fds[1], "ab", 2), 2); });
  loop.AddTimer(milliseconds(40),
                [&] { ASSERT_EQ(write(fds[1], "cd", 2), 2); });
  loop.AddTimer(milliseconds(80), [&] { loop.Stop(); });
  loop.Run();
  EXPECT_EQ(recorder.data_, "abcd");
  EXPECT_EQ(recorder.reads_, 2);  // one edge per arrival, no repeats.
  loop.Unwatch(fds[0]);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace warden::dataplane::net
