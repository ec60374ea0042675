#include "controlplane/scim/connection_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace warden::controlplane::scim {
namespace {

// Set on the listener thread while it runs a connection that found the
// queue full: the guard closes that connection at its first TLS step.
thread_local bool refusing_here = false;
// On a worker, while it serves a connection: the connection's place in
// accept order (the guard's "oldest" is by accept order, not by which
// worker happened to start its handshake first).
thread_local uint64_t accepted_here = 0;

// What the per-peer limit counts by: the IPv4 address (also when mapped
// into IPv6), or the IPv6 /64 (one host usually has a whole /64).
std::string PeerKey(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return "?";
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return text;
  }
  if (address.ss_family == AF_INET6) {
    in6_addr v6 = reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      inet_ntop(AF_INET, &v6.s6_addr[12], text, sizeof(text));
      return text;
    }
    std::memset(&v6.s6_addr[8], 0, 8);
    inet_ntop(AF_INET6, &v6, text, sizeof(text));
    return absl::StrCat(text, "/64");
  }
  return "?";
}

// cpp-httplib's TaskQueue: `workers` threads, at most `queued` connections
// waiting. When the queue is full, the connection that waited longest is
// run at once on the calling (listener) thread with `refusing_here` set,
// which closes it at its first TLS step, and the new one queued. Each
// queued connection takes the next of `ticks`, in accept order; `waiting`
// counts the queued connections no idle worker is about to take.
// shutdown() runs what is queued, then joins the threads.
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(size_t workers, size_t queued, std::atomic<uint64_t>* ticks,
              std::atomic<size_t>* waiting)
      : queued_(queued), ticks_(ticks), waiting_(waiting) {
    for (size_t i = 0; i < workers; ++i) {
      threads_.emplace_back([this] { Work(); });
    }
  }
  ~BoundedPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::function<void()> dropped;
    {
      absl::MutexLock lock(&mu_);
      if (jobs_.size() >= queued_ && !jobs_.empty()) {
        // Full: the connection that waited longest goes, so a client that
        // just connected (or retried) gets its turn.
        dropped = std::move(jobs_.front());
        jobs_.pop_front();
      }
      if (queued_ > 0) {
        jobs_.push_back([tick = ticks_->fetch_add(1), fn = std::move(fn)] {
          accepted_here = tick;
          fn();
          accepted_here = 0;
        });
        Publish();
      } else {
        dropped = std::move(fn);
      }
    }
    if (dropped) {
      refusing_here = true;
      dropped();
      refusing_here = false;
    }
  }

  void shutdown() override {
    {
      absl::MutexLock lock(&mu_);
      shutdown_ = true;
    }
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shutdown_ || !jobs_.empty();
  }

  void Publish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    waiting_->store(jobs_.size() > idle_ ? jobs_.size() - idle_ : 0);
  }

  void Work() {
    for (;;) {
      std::function<void()> job;
      {
        absl::MutexLock lock(&mu_);
        ++idle_;
        Publish();
        mu_.Await(absl::Condition(this, &BoundedPool::Ready));
        --idle_;
        if (jobs_.empty()) return;  // shut down, nothing left
        job = std::move(jobs_.front());
        jobs_.pop_front();
        Publish();
      }
      job();
    }
  }

  const size_t queued_;
  std::atomic<uint64_t>* const ticks_;
  std::atomic<size_t>* const waiting_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;  // workers waiting for a job
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace

ConnectionGuard::ConnectionGuard(const ConnectionLimits& limits)
    : limits_(limits), sweeper_([this] { Sweep(); }) {}

ConnectionGuard::~ConnectionGuard() { Stop(); }

// Every SSL of the process carries the slot; OnFree sees null in the
// others.
int ConnectionGuard::SslIndex() {
  static const int index =
      SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &OnFree);
  return index;
}

int ConnectionGuard::CtxIndex() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

void ConnectionGuard::Watch(SSL_CTX* ctx) {
  SslIndex();  // registers the free callback before the first connection
  SSL_CTX_set_ex_data(ctx, CtxIndex(), this);
  SSL_CTX_set_info_callback(ctx, &OnInfo);
}

httplib::TaskQueue* ConnectionGuard::NewTaskQueue() {
  return new BoundedPool(limits_.workers, limits_.queued, &ticks_, &waiting_);
}

// OpenSSL calls this with SSL_CB_HANDSHAKE_START when SSL_accept starts,
// before it reads anything, on the thread that serves the connection.
void ConnectionGuard::OnInfo(const SSL* ssl, int where, int /*ret*/) {
  if ((where & SSL_CB_HANDSHAKE_START) == 0) return;
  auto* guard = static_cast<ConnectionGuard*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), CtxIndex()));
  // OpenSSL hands callbacks a const SSL; the object itself is not const.
  if (guard != nullptr) guard->HandshakeStarted(const_cast<SSL*>(ssl));
}

// Runs in SSL_free, which cpp-httplib calls before it closes the socket: a
// registered descriptor is always still open, so Close() never hits a
// reused one.
void ConnectionGuard::OnFree(void* /*parent*/, void* ptr,
                             CRYPTO_EX_DATA* /*data*/, int /*index*/,
                             long /*argl*/,  // NOLINT(runtime/int)
                             void* /*argp*/) {
  auto* connection = static_cast<Connection*>(ptr);
  if (connection != nullptr) connection->guard->Forget(connection);
}

void ConnectionGuard::HandshakeStarted(SSL* ssl) {
  const int fd = SSL_get_fd(ssl);
  if (fd < 0) return;
  // Counted once, whatever a renegotiation attempt (switched off) does.
  if (SSL_get_ex_data(ssl, SslIndex()) != nullptr) return;
  std::string peer = PeerKey(fd);
  absl::MutexLock lock(&mu_);
  if (refusing_here || stopping_) {
    ::shutdown(fd, SHUT_RDWR);
    ++refused_;
    return;
  }
  auto* connection = new Connection{this, fd, std::move(peer)};
  connection->since = absl::Now();
  connection->order = accepted_here != 0 ? accepted_here : ticks_.fetch_add(1);
  if (SSL_set_ex_data(ssl, SslIndex(), connection) != 1) {
    delete connection;
    return;
  }
  connections_.push_back(connection);
  LimitPeer(connection->peer);
}

void ConnectionGuard::Forget(Connection* connection) {
  {
    absl::MutexLock lock(&mu_);
    connections_.erase(
        std::remove(connections_.begin(), connections_.end(), connection),
        connections_.end());
  }
  delete connection;
}

void ConnectionGuard::RequestArrived(const SSL* ssl) {
  if (ssl == nullptr) return;
  auto* connection = static_cast<Connection*>(SSL_get_ex_data(ssl, SslIndex()));
  if (connection == nullptr) return;
  absl::MutexLock lock(&mu_);
  connection->unfinished = false;
}

void ConnectionGuard::ResponseSent(const SSL* ssl) {
  if (ssl == nullptr) return;
  auto* connection = static_cast<Connection*>(SSL_get_ex_data(ssl, SslIndex()));
  if (connection == nullptr) return;
  absl::MutexLock lock(&mu_);
  if (connection->closed) return;
  if (connection->close_after_response) {
    Close(connection);
    return;
  }
  connection->unfinished = true;
  connection->since = absl::Now();
  connection->order = ticks_.fetch_add(1);
  LimitPeer(connection->peer);
}

void ConnectionGuard::CloseAfterResponse(const SSL* ssl) {
  if (ssl == nullptr) return;
  auto* connection = static_cast<Connection*>(SSL_get_ex_data(ssl, SslIndex()));
  if (connection == nullptr) return;
  absl::MutexLock lock(&mu_);
  connection->close_after_response = true;
}

void ConnectionGuard::LimitPeer(const std::string& peer) {
  size_t unfinished = 0;
  Connection* oldest = nullptr;
  for (Connection* c : connections_) {
    if (c->peer != peer || !c->unfinished || c->closed) continue;
    ++unfinished;
    if (oldest == nullptr || c->order < oldest->order) oldest = c;
  }
  if (unfinished > limits_.unfinished_per_peer) {
    Close(oldest);
    ++over_peer_limit_;
  }
}

// shutdown(2), not close: the worker wakes from its poll, sees the end of
// the stream, and cpp-httplib closes the socket as after any failed read.
void ConnectionGuard::Close(Connection* connection) {
  ::shutdown(connection->fd, SHUT_RDWR);
  connection->closed = true;
  connection->unfinished = false;
}

void ConnectionGuard::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      stopping_ = true;
      for (Connection* c : connections_) {
        if (c->unfinished && !c->closed) Close(c);
      }
    }
  }
  if (sweeper_.joinable() && sweeper_.get_id() != std::this_thread::get_id()) {
    sweeper_.join();
  }
}

void ConnectionGuard::SweepOnce(absl::Time now) {
  std::vector<Connection*> old;  // unfinished for pressure_age or more
  for (Connection* c : connections_) {
    if (!c->unfinished || c->closed) continue;
    if (now - c->since > limits_.request_deadline) {
      Close(c);
      ++past_deadline_;
    } else if (now - c->since >= limits_.pressure_age) {
      old.push_back(c);
    }
  }
  const size_t waiting = waiting_.load();
  if (waiting == 0 || old.empty()) return;
  const size_t n = std::min(waiting, old.size());
  std::partial_sort(old.begin(), old.begin() + n, old.end(),
                    [](const Connection* a, const Connection* b) {
                      return a->order < b->order;
                    });
  for (size_t i = 0; i < n; ++i) Close(old[i]);
  for_room_ += n;
}

void ConnectionGuard::Sweep() {
  absl::MutexLock lock(&mu_);
  absl::Time next_report = absl::Now() + limits_.report_interval;
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                               limits_.sweep_interval)) {
    const absl::Time now = absl::Now();
    SweepOnce(now);
    if (now < next_report) continue;
    next_report = now + limits_.report_interval;
    const uint64_t closed =
        refused_ + over_peer_limit_ + for_room_ + past_deadline_;
    if (closed == 0) continue;
    spdlog::warn(
        "scim: closed {} connections without an answer in the last {}: {} "
        "while {} waited for a worker, {} over {} unfinished from one peer, "
        "{} unfinished for {} while others waited, {} unfinished after {}",
        closed, absl::FormatDuration(limits_.report_interval), refused_,
        limits_.queued, over_peer_limit_, limits_.unfinished_per_peer,
        for_room_, absl::FormatDuration(limits_.pressure_age), past_deadline_,
        absl::FormatDuration(limits_.request_deadline));
    refused_ = over_peer_limit_ = for_room_ = past_deadline_ = 0;
  }
}

}  // namespace warden::controlplane::scim
