// A non-blocking TCP connection, optionally wrapped in TLS, driven by the
// caller's readiness events (EventLoop). Reads go into a caller-owned
// buffer (the worker's scratch buffer), so an idle connection holds no read
// buffer of its own; with SSL_MODE_RELEASE_BUFFERS an idle TLS connection
// releases OpenSSL's buffers too.
//
// Not thread-safe: a connection belongs to one worker's event loop.
#ifndef WARDEN_DATAPLANE_NET_CONN_H_
#define WARDEN_DATAPLANE_NET_CONN_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace warden::dataplane::net {

enum class IoResult {
  kOk,         // `bytes` transferred (> 0).
  kWantRead,   // retry when readable.
  kWantWrite,  // retry when writable.
  kEof,        // orderly close by the peer.
  kError,      // `error` says what; the connection is unusable.
};

struct IoOutcome {
  IoResult result = IoResult::kOk;
  size_t bytes = 0;
  std::string error;
};

class Conn {
 public:
  // Takes ownership of a connected (or connecting) non-blocking socket.
  explicit Conn(int fd);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int fd() const { return fd_; }
  bool tls() const { return ssl_ != nullptr; }

  // StartTls attaches a TLS session to the connected socket; drive it with
  // Handshake(). For clients, `verify_host` (if non-empty) is checked
  // against the peer certificate. Must be called at most once.
  absl::Status StartTls(SSL_CTX* ctx, bool server,
                        const std::string& verify_host);
  // Handshake returns kOk once done, kWantRead/kWantWrite to retry.
  IoOutcome Handshake();
  // The certificate the peer presented in the TLS handshake (PEM; the
  // handshake proved the peer holds its key, the chain is for the caller to
  // verify), or "" without TLS or without one.
  std::string PeerCertificatePem() const;

  IoOutcome Read(char* buf, size_t cap);
  IoOutcome Write(const char* data, size_t len);

  // Whether the peer has hung up, seen without reading: the socket is at
  // its end (or broken) with no byte left to read. Only for plain TCP
  // (false with TLS, whose records cannot be peeked at this way).
  bool PeerHungUp() const;

  // Close closes the socket (which also removes it from epoll).
  void Close();
  bool closed() const { return closed_; }

 private:
  IoOutcome SslOutcome(int ret, const char* op);

  int fd_;
  SSL* ssl_ = nullptr;
  bool closed_ = false;
};

}  // namespace warden::dataplane::net

#endif  // WARDEN_DATAPLANE_NET_CONN_H_
