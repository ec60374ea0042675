#include "dataplane/net/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dataplane/net/address.h"

namespace warden::dataplane::net {
namespace {

// RFC 6761 section 6.4: "invalid" and the names under it never resolve.
bool IsInvalidName(absl::string_view host) {
  if (absl::EndsWith(host, ".")) host.remove_suffix(1);
  return absl::EqualsIgnoreCase(host, "invalid") ||
         absl::EndsWithIgnoreCase(host, ".invalid");
}

absl::Status LookupError(int rc) {
  const char* text = gai_strerror(rc);
  switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
      return absl::NotFoundError(text);
    case EAI_MEMORY:
      return absl::ResourceExhaustedError(text);
    default:
      return absl::UnavailableError(text);
  }
}

}  // namespace

absl::StatusOr<Addresses> LookUpHost(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0) return LookupError(rc);
  Addresses addresses;
  for (addrinfo* a = result; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {0};
    if (a->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr,
                text, sizeof(text));
    } else if (a->ai_family == AF_INET6) {
      inet_ntop(AF_INET6,
                &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, text,
                sizeof(text));
    } else {
      continue;
    }
    addresses.emplace_back(text, port);
  }
  freeaddrinfo(result);
  if (addresses.empty()) return absl::NotFoundError("no addresses");
  return addresses;
}

Resolver::Resolver() : Resolver(Options()) {}

Resolver::Resolver(Options options)
    : max_queued_(options.max_queued),
      lookup_(options.lookup ? std::move(options.lookup) : LookUpHost) {
  const int threads = std::max(1, options.threads);
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

Resolver::~Resolver() {
  std::deque<Request> abandoned;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    abandoned.swap(queue_);
  }
  for (Request& r : abandoned) {
    Deliver(std::move(r),
            absl::CancelledError("the resolver is shutting down"));
  }
  for (std::thread& t : threads_) t.join();
}

void Resolver::Resolve(std::string host, uint16_t port,
                       std::shared_ptr<EventLoop> loop, Callback done) {
  Request request{std::move(host), port, std::move(loop), std::move(done)};
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  if (ParseAddress(request.host, port, &addr, &addr_len)) {
    Addresses literal{{request.host, port}};
    return Deliver(std::move(request), std::move(literal));
  }
  if (IsInvalidName(request.host)) {
    return Deliver(std::move(request),
                   absl::NotFoundError(gai_strerror(EAI_NONAME)));
  }
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      refused = absl::CancelledError("the resolver is shutting down");
    } else if (queue_.size() >= max_queued_) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("too many host name lookups waiting (", max_queued_,
                       "); try again later"));
    } else {
      queue_.push_back(std::move(request));
      return;
    }
  }
  Deliver(std::move(request), std::move(refused));
}

void Resolver::Deliver(Request request, absl::StatusOr<Addresses> result) {
  // The loop must not own itself through its own task: the task holds only
  // the callback and the answer, and the loop reference ends here.
  std::shared_ptr<EventLoop> loop = std::move(request.loop);
  loop->Post(
      [done = std::move(request.done), result = std::move(result)]() mutable {
        done(std::move(result));
      });
}

void Resolver::Work() {
  for (;;) {
    Request request;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Resolver::HasWorkOrStopping));
      if (stopping_) return;
      request = std::move(queue_.front());
      queue_.pop_front();
    }
    absl::StatusOr<Addresses> result = lookup_(request.host, request.port);
    Deliver(std::move(request), std::move(result));
  }
}

}  // namespace warden::dataplane::net
