// Resolver: host name lookups off the event loops. getaddrinfo blocks, so
// a fixed pool of threads runs it and each answer is posted back to the
// loop that asked; a bounded queue keeps a slow or dead DNS from piling up
// threads or memory (one thread per connection used to).
//
// Threading: Resolve may be called from any thread. One Resolver per
// process (the server owns it).
#ifndef WARDEN_DATAPLANE_NET_RESOLVER_H_
#define WARDEN_DATAPLANE_NET_RESOLVER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "dataplane/net/event_loop.h"

namespace warden::dataplane::net {

// Where a name points: literal IP addresses (text ParseAddress accepts),
// each with the port asked for, in getaddrinfo's order.
using Addresses = std::vector<std::pair<std::string, uint16_t>>;

class Resolver {
 public:
  using Callback = std::function<void(absl::StatusOr<Addresses>)>;
  // What a pool thread runs for one name (getaddrinfo unless replaced).
  using LookupFn = std::function<absl::StatusOr<Addresses>(
      const std::string& host, uint16_t port)>;

  struct Options {
    // Lookups that run at once.
    int threads = 4;
    // Lookups waiting for a thread (those running are not counted); more
    // are refused at once.
    size_t max_queued = 1024;
    // Tests replace the lookup; empty means getaddrinfo.
    LookupFn lookup;
  };

  Resolver();
  explicit Resolver(Options options);
  // Fails every queued lookup with CancelledError, then waits for the
  // running ones (each bounded by the system resolver's own timeouts) and
  // delivers their answers as usual.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Resolve looks up `host` and calls `done` exactly once, on `loop`'s
  // thread (through Post, never inside this call), with its addresses
  // (with `port`) or an error:
  //   - a literal IPv4 or IPv6 address is its own answer, without a thread;
  //   - a name under `.invalid` fails at once with NotFound: RFC 6761 says
  //     it never resolves, so no query is sent;
  //   - NotFound (the name does not exist or has no address), Unavailable
  //     (DNS failure) etc., with getaddrinfo's text as the message;
  //   - ResourceExhausted when `max_queued` lookups already wait;
  //   - Cancelled when the resolver is destroyed before the lookup ran.
  // `loop` is kept alive until the answer is posted; an answer posted to a
  // loop that never runs again is dropped with the loop's tasks.
  void Resolve(std::string host, uint16_t port, std::shared_ptr<EventLoop> loop,
               Callback done);

 private:
  struct Request {
    std::string host;
    uint16_t port = 0;
    std::shared_ptr<EventLoop> loop;
    Callback done;
  };
  static void Deliver(Request request, absl::StatusOr<Addresses> result);
  void Work();
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }

  const size_t max_queued_;
  const LookupFn lookup_;
  absl::Mutex mu_;
  std::deque<Request> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// LookUpHost runs getaddrinfo for `host` (blocking) and returns its IPv4
// and IPv6 addresses with `port`; errors as Resolver::Resolve describes.
absl::StatusOr<Addresses> LookUpHost(const std::string& host, uint16_t port);

}  // namespace warden::dataplane::net

#endif  // WARDEN_DATAPLANE_NET_RESOLVER_H_
