#include "dataplane/net/cancel_sender.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "dataplane/net/address.h"
#include "dataplane/pgwire/encoder.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::net {
namespace {

// Connects to the upstream, sends one CancelRequest and waits until the
// server closes the connection (or 5 s pass). Deletes itself.
class CancelSender : public EventLoop::Handler {
 public:
  static void Start(EventLoop* loop, const CancelTarget& target,
                    std::function<void()> done) {
    auto* sender = new CancelSender(loop, std::move(done));
    sender->Begin(target);
  }

  void OnEvents(uint32_t events) override {
    if (finished_) return;
    if (!sent_ && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int error = 0;
      socklen_t len = sizeof(error);
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len);
      if (error != 0) {
        spdlog::warn("cancel: cannot reach upstream: {}", std::strerror(error));
        return Finish();
      }
      const ssize_t n =
          ::send(fd_, message_.data(), message_.size(), MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(message_.size())) return Finish();
      sent_ = true;
    }
    if (sent_ && (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) {
      char sink[64];
      const ssize_t n = ::recv(fd_, sink, sizeof(sink), 0);
      if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) Finish();
    }
  }

 private:
  CancelSender(EventLoop* loop, std::function<void()> done)
      : loop_(loop), done_(std::move(done)) {}

  void Begin(const CancelTarget& target) {
    pgwire::WriteCancelRequest(&message_, target.pid, target.secret);
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    if (!ParseAddress(target.host, target.port, &addr, &addr_len)) {
      spdlog::warn("cancel: bad upstream address {}", target.host);
      return Finish();
    }
    fd_ = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return Finish();
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 &&
        errno != EINPROGRESS) {
      spdlog::warn("cancel: cannot reach upstream: {}", std::strerror(errno));
      return Finish();
    }
    if (!loop_->Watch(fd_, this).ok()) return Finish();
    timer_ = loop_->AddTimer(std::chrono::seconds(5), [this] {
      timer_ = 0;
      Finish();
    });
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    if (timer_ != 0) loop_->CancelTimer(timer_);
    if (fd_ >= 0) ::close(fd_);
    if (done_) done_();
    // Events for this object may still be queued in the current batch.
    loop_->Defer([this] { delete this; });
  }

  EventLoop* loop_;
  std::function<void()> done_;
  std::string message_;
  int fd_ = -1;
  bool sent_ = false;
  bool finished_ = false;
  EventLoop::TimerId timer_ = 0;
};

}  // namespace

void SendCancel(EventLoop* loop, const CancelTarget& target,
                std::function<void()> done) {
  CancelSender::Start(loop, target, std::move(done));
}

}  // namespace warden::dataplane::net
