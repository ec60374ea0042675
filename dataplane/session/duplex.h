// Duplex: a session's two sockets (the client's and the upstream's) and
// the bytes between them: reads in turns, writes buffered when a socket
// does not take them at once, and backpressure from one side to the
// other. It knows nothing of the protocol: what the bytes mean, when a
// side may be read and what a lost peer means are the session's
// (Duplex::Callbacks).
//
// - ReadLoop reads a side while the session allows it (MayRead), up to
//   kReadsPerTurn reads before it yields to the worker's other sessions
//   (DeferRead). It stops, and marks the side paused, while the other side
//   has proxy.max_buffered_bytes unsent; that side's Flush resumes it.
// - The bytes read go to the session from a message boundary (OnBytes);
//   what it does not use yet (an incomplete message, a held statement)
//   stays in the side's `in` buffer for the next call (Consume).
// - Send writes at once when nothing waits, else appends; Flush drains on
//   EPOLLOUT. While the session holds the upstream (UpstreamHeld: audit
//   events not yet written), nothing is written upstream: Send only
//   appends and Flush returns, until the session flushes it again.
// - A side marked close_after_flush closes once drained (OnPeerClosed).
//
// Not thread-safe: one per session, on its loop thread.
#ifndef WARDEN_DATAPLANE_SESSION_DUPLEX_H_
#define WARDEN_DATAPLANE_SESSION_DUPLEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/net/conn.h"
#include "dataplane/net/event_loop.h"

namespace warden::dataplane::session {

enum class Side { kClient, kUpstream };

// A read of up to this many bytes at a time (one buffer per worker).
inline constexpr size_t kScratchSize = 64 * 1024;
// Reads (of up to kScratchSize) one session may do before yielding.
inline constexpr int kReadsPerTurn = 16;

class Duplex {
 public:
  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    // A socket's readiness (epoll events) for side `s`.
    virtual void OnEvents(Side s, uint32_t events) = 0;
    // Whether side `s` may be read now.
    virtual bool MayRead(Side s) const = 0;
    // Checked after the backpressure of the other side: false stops
    // reading the client until the session reads it again (too many
    // unanswered executions).
    virtual bool MayReadMore(Side s) = 0;
    // Calls ReadLoop(s) later, keeping the session alive.
    virtual void DeferRead(Side s) = 0;
    // Bytes of side `s` from a message boundary: how many were used.
    virtual size_t OnBytes(Side s, absl::string_view buf) = 0;
    // After a read of `s` went to OnBytes: true stops this read loop (a
    // TLS handshake takes the socket over).
    virtual bool StopAfterRead(Side s) = 0;
    // Side `s` closed (`eof`) or broke (`error`).
    virtual void OnPeerLost(Side s, bool eof, const std::string& error) = 0;
    // The session ended (nothing more is kept of what it was given).
    virtual bool ended() const = 0;
    // Nothing may be written upstream now.
    virtual bool UpstreamHeld() const = 0;
    // A side closed after its last bytes were written.
    virtual void OnPeerClosed() = 0;
  };

  // Routes a socket's events to the session (one per peer).
  struct Watcher : net::EventLoop::Handler {
    Callbacks* callbacks = nullptr;
    Side side = Side::kClient;
    void OnEvents(uint32_t events) override {
      callbacks->OnEvents(side, events);
    }
  };

  struct Peer {
    std::unique_ptr<net::Conn> conn;
    Watcher watcher;
    std::string in;                 // bytes of an incomplete message.
    std::string out;                // bytes not yet accepted by the socket.
    size_t out_pos = 0;             // start of unsent bytes in `out`.
    bool read_paused = false;       // backpressure from the other peer.
    bool read_wants_write = false;  // TLS read needs the socket writable.
    bool close_after_flush = false;
    size_t pending() const { return out.size() - out_pos; }
    bool open() const { return conn != nullptr && !conn->closed(); }
  };

  // `max_buffered_bytes`: proxy.max_buffered_bytes.
  Duplex(Callbacks* callbacks, size_t max_buffered_bytes);

  Peer& peer(Side s) { return s == Side::kClient ? client_ : upstream_; }
  Peer& other(Side s) { return s == Side::kClient ? upstream_ : client_; }
  static Side Other(Side s) {
    return s == Side::kClient ? Side::kUpstream : Side::kClient;
  }
  Peer& client() { return client_; }
  Peer& upstream() { return upstream_; }
  const Peer& client() const { return client_; }
  const Peer& upstream() const { return upstream_; }

  // The generic part of a socket's readiness: a TLS read that waited for
  // EPOLLOUT, buffered bytes, then reads.
  void OnReady(Side s, uint32_t events);
  void ReadLoop(Side s);
  // Gives the session `n` more bytes of side `s` (none: what is buffered).
  void Consume(Side s, const char* data, size_t n);
  void Send(Side s, absl::string_view data);
  void Flush(Side s);

 private:
  Callbacks* const callbacks_;
  const size_t max_buffered_bytes_;
  Peer client_;
  Peer upstream_;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_DUPLEX_H_
