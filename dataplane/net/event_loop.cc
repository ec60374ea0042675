#include "dataplane/net/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace warden::dataplane::net {

EventLoop::EventLoop() = default;

EventLoop::~EventLoop() {
  // Tasks may own objects whose destructors still use the loop (cancel
  // their timers): destroy them while the loop is whole.
  std::vector<std::function<void()>>().swap(deferred_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::function<void()>>().swap(posted_);
  }
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::Status EventLoop::Init() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    return absl::InternalError(
        absl::StrCat("epoll_create1: ", std::strerror(errno)));
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up descriptor.
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    return absl::InternalError(
        absl::StrCat("epoll_ctl(eventfd): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

bool EventLoop::InLoopThread() const {
  return std::this_thread::get_id() == thread_id_;
}

absl::Status EventLoop::Watch(int fd, Handler* handler) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return absl::InternalError(
        absl::StrCat("epoll_ctl(ADD): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void EventLoop::Unwatch(int fd) {
  epoll_event ev{};
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, &ev);
}

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back(std::move(fn));
  }
  Wake();
}

void EventLoop::Defer(std::function<void()> fn) {
  deferred_.push_back(std::move(fn));
}

void EventLoop::Wake() {
  const uint64_t one = 1;
  // EAGAIN means a wake-up is already pending: fine.
  (void)!write(wake_fd_, &one, sizeof(one));
}

void EventLoop::Stop() {
  stop_requested_.store(true);
  Wake();
}

EventLoop::TimerId EventLoop::AddTimer(std::chrono::milliseconds delay,
                                       std::function<void()> fn) {
  const TimerId id = next_timer_id_++;
  const Clock::time_point when = Clock::now() + delay;
  timer_order_.emplace(when, id);
  timers_.emplace(id, std::make_pair(when, std::move(fn)));
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  auto range = timer_order_.equal_range(it->second.first);
  for (auto o = range.first; o != range.second; ++o) {
    if (o->second == id) {
      timer_order_.erase(o);
      break;
    }
  }
  timers_.erase(it);
}

int EventLoop::NextTimeoutMs() {
  if (!deferred_.empty()) return 0;
  if (timer_order_.empty()) return -1;
  const auto wait = timer_order_.begin()->first - Clock::now();
  if (wait <= Clock::duration::zero()) return 0;
  // Round up so a timer never fires early.
  return static_cast<int>(
      std::chrono::ceil<std::chrono::milliseconds>(wait).count());
}

void EventLoop::RunTimers() {
  const Clock::time_point now = Clock::now();
  while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
    const TimerId id = timer_order_.begin()->second;
    timer_order_.erase(timer_order_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;
    std::function<void()> fn = std::move(it->second.second);
    timers_.erase(it);
    fn();
  }
}

void EventLoop::RunTasks() {
  std::vector<std::function<void()>> posted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted.swap(posted_);
  }
  for (auto& fn : posted) fn();
  // Deferred tasks may defer more; run until none are left.
  while (!deferred_.empty()) {
    std::vector<std::function<void()>> deferred;
    deferred.swap(deferred_);
    for (auto& fn : deferred) fn();
  }
}

void EventLoop::Run() {
  thread_id_ = std::this_thread::get_id();
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stop_requested_.load(std::memory_order_relaxed)) {
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, NextTimeoutMs());
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      auto* handler = static_cast<Handler*>(events[i].data.ptr);
      if (handler == nullptr) {
        uint64_t count = 0;
        (void)!read(wake_fd_, &count, sizeof(count));
        continue;
      }
      handler->OnEvents(events[i].events);
      // Handlers closed during this batch are destroyed by Defer, after it.
    }
    RunTasks();
    RunTimers();
    RunTasks();
  }
}

}  // namespace warden::dataplane::net
