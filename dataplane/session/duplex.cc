#include "dataplane/session/duplex.h"

#include <sys/epoll.h>

#include <utility>

namespace warden::dataplane::session {
namespace {

// One read buffer per worker thread: an idle session owns none.
char* Scratch() {
  static thread_local std::unique_ptr<char[]> buffer(new char[kScratchSize]);
  return buffer.get();
}

}  // namespace

Duplex::Duplex(Callbacks* callbacks, size_t max_buffered_bytes)
    : callbacks_(callbacks), max_buffered_bytes_(max_buffered_bytes) {
  client_.watcher.callbacks = callbacks;
  client_.watcher.side = Side::kClient;
  upstream_.watcher.callbacks = callbacks;
  upstream_.watcher.side = Side::kUpstream;
}

void Duplex::OnReady(Side s, uint32_t events) {
  Peer& p = peer(s);
  const bool readable = events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP);
  const bool writable = events & (EPOLLOUT | EPOLLERR | EPOLLHUP);
  if (writable) {
    if (p.read_wants_write) {
      p.read_wants_write = false;
      ReadLoop(s);
    }
    if (p.pending() > 0 || p.close_after_flush) Flush(s);
  }
  if (readable && p.open()) ReadLoop(s);
}

void Duplex::ReadLoop(Side s) {
  Peer& p = peer(s);
  char* buf = Scratch();
  int reads = 0;
  while (p.open() && callbacks_->MayRead(s)) {
    if (other(s).pending() >= max_buffered_bytes_) {
      p.read_paused = true;  // resumed by Flush of the other peer.
      return;
    }
    if (!callbacks_->MayReadMore(s)) return;
    if (++reads > kReadsPerTurn) {
      // A busy stream yields to the worker's other sessions. Readiness is
      // edge-triggered and the socket is not drained, so continue by post.
      callbacks_->DeferRead(s);
      return;
    }
    const net::IoOutcome r = p.conn->Read(buf, kScratchSize);
    switch (r.result) {
      case net::IoResult::kOk:
        Consume(s, buf, r.bytes);
        if (callbacks_->StopAfterRead(s)) return;
        if (r.bytes < kScratchSize && !p.conn->tls()) {
          // A short plaintext read drained the socket: anything arriving
          // later raises a new edge, so skip the recv that would only
          // return EAGAIN (one syscall per message on the hot path).
          return;
        }
        continue;
      case net::IoResult::kWantRead:
        return;  // drained; the next edge resumes.
      case net::IoResult::kWantWrite:
        p.read_wants_write = true;  // resumed by the next EPOLLOUT.
        return;
      case net::IoResult::kEof:
      case net::IoResult::kError:
        callbacks_->OnPeerLost(s, r.result == net::IoResult::kEof, r.error);
        return;
    }
  }
}

void Duplex::Consume(Side s, const char* data, size_t n) {
  Peer& p = peer(s);
  absl::string_view buf;
  const bool buffered = !p.in.empty();
  if (buffered) {
    if (n > 0) p.in.append(data, n);
    buf = p.in;
  } else {
    buf = absl::string_view(data, n);
  }
  if (buf.empty()) return;
  const size_t used = callbacks_->OnBytes(s, buf);
  if (callbacks_->ended()) return;
  if (buffered) {
    p.in.erase(0, used);
    if (p.in.empty() && p.in.capacity() > kScratchSize)
      std::string().swap(p.in);
  } else if (used < buf.size()) {
    p.in.assign(buf.data() + used, buf.size() - used);
  }
}

void Duplex::Send(Side s, absl::string_view data) {
  Peer& p = peer(s);
  if (data.empty() || !p.open()) return;
  if (s == Side::kUpstream && callbacks_->UpstreamHeld()) {
    // Not before the session lifts the hold (and flushes).
    if (p.pending() == 0) {
      p.out.clear();
      p.out_pos = 0;
    }
    p.out.append(data.data(), data.size());
    return;
  }
  if (p.pending() == 0) {
    while (!data.empty()) {
      const net::IoOutcome r = p.conn->Write(data.data(), data.size());
      if (r.result == net::IoResult::kOk) {
        data.remove_prefix(r.bytes);
        continue;
      }
      if (r.result == net::IoResult::kWantWrite ||
          r.result == net::IoResult::kWantRead) {
        break;
      }
      // A broken peer.
      return callbacks_->OnPeerLost(s, /*eof=*/false, r.error);
    }
    if (data.empty()) return;
    p.out.clear();
    p.out_pos = 0;
  }
  p.out.append(data.data(), data.size());  // flushed on EPOLLOUT.
}

void Duplex::Flush(Side s) {
  Peer& p = peer(s);
  if (s == Side::kUpstream && callbacks_->UpstreamHeld()) return;
  while (p.open() && p.pending() > 0) {
    const net::IoOutcome r =
        p.conn->Write(p.out.data() + p.out_pos, p.pending());
    if (r.result == net::IoResult::kOk) {
      p.out_pos += r.bytes;
      continue;
    }
    if (r.result == net::IoResult::kWantWrite ||
        r.result == net::IoResult::kWantRead) {
      return;  // the next edge resumes the flush.
    }
    return callbacks_->OnPeerLost(s, /*eof=*/false, r.error);
  }
  if (!p.open()) return;
  // Drained: release the buffer if it grew, then lift backpressure.
  p.out_pos = 0;
  if (p.out.capacity() > kScratchSize) {
    std::string().swap(p.out);
  } else {
    p.out.clear();
  }
  if (p.close_after_flush) {
    p.conn->Close();
    callbacks_->OnPeerClosed();
    return;
  }
  Peer& o = other(s);
  if (o.read_paused) {
    o.read_paused = false;
    ReadLoop(Other(s));
  }
}

}  // namespace warden::dataplane::session
