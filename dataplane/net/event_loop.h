// EventLoop: one worker's epoll loop. Each socket is registered once,
// edge-triggered for input and output, and never re-armed: the hot path of
// a proxied message is one recv and one send, nothing else (asio 1.22 adds
// an epoll_ctl or a speculative recv per wait, which the benchmark showed
// as the gap to PgBouncer).
//
// Contract for handlers (edge-triggered): on EPOLLIN read until the socket
// is drained (a short plaintext read or EAGAIN); on EPOLLOUT flush until
// EAGAIN. An event ignored for a while (backpressure) must be followed by
// an explicit read attempt when resuming.
//
// Threading: everything runs on the thread that calls Run(), except Post()
// and Stop(), which any thread may call.
#ifndef WARDEN_DATAPLANE_NET_EVENT_LOOP_H_
#define WARDEN_DATAPLANE_NET_EVENT_LOOP_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace warden::dataplane::net {

class EventLoop : public std::enable_shared_from_this<EventLoop> {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // `events` are epoll bits (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP,
    // EPOLLRDHUP).
    virtual void OnEvents(uint32_t events) = 0;
  };
  using Clock = std::chrono::steady_clock;
  using TimerId = uint64_t;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Init creates the epoll and wake-up descriptors.
  absl::Status Init();

  // Run dispatches events, timers and tasks until Stop().
  void Run();
  // Stop makes Run() return after the current iteration. Thread-safe.
  void Stop();

  // Watch registers `fd` (edge-triggered, in and out) for `handler`, which
  // must stay valid until Unwatch (or until the fd is closed).
  absl::Status Watch(int fd, Handler* handler);
  void Unwatch(int fd);

  // Post runs `fn` on the loop thread. Thread-safe. A thread that may
  // outlive the loop should hold it through shared_from_this() (loops owned
  // by std::shared_ptr).
  void Post(std::function<void()> fn);
  // Defer runs `fn` on the loop thread after the current batch of events;
  // loop thread only. Objects whose handlers may still have events queued
  // in this batch are destroyed through Defer.
  void Defer(std::function<void()> fn);

  // AddTimer runs `fn` once after `delay`; CancelTimer makes it never run.
  TimerId AddTimer(std::chrono::milliseconds delay, std::function<void()> fn);
  void CancelTimer(TimerId id);

  bool InLoopThread() const;

 private:
  void Wake();
  int NextTimeoutMs();
  void RunTimers();
  void RunTasks();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool stopped_ = false;
  std::atomic<bool> stop_requested_{false};
  std::thread::id thread_id_;

  std::mutex mu_;
  std::vector<std::function<void()>> posted_;  // guarded by mu_.
  std::vector<std::function<void()>> deferred_;

  TimerId next_timer_id_ = 1;
  std::multimap<Clock::time_point, TimerId> timer_order_;
  absl::flat_hash_map<TimerId,
                      std::pair<Clock::time_point, std::function<void()>>>
      timers_;
};

}  // namespace warden::dataplane::net

#endif  // WARDEN_DATAPLANE_NET_EVENT_LOOP_H_
