#include "dataplane/net/conn.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/tls.h"

namespace warden::dataplane::net {

Conn::Conn(int fd) : fd_(fd) {
  const int flags = fcntl(fd_, F_GETFL, 0);
  if (flags >= 0 && !(flags & O_NONBLOCK))
    fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

Conn::~Conn() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (!closed_) ::close(fd_);
}

absl::Status Conn::StartTls(SSL_CTX* ctx, bool server,
                            const std::string& verify_host) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr) {
    return absl::InternalError("SSL_new: " + tls::ErrorString());
  }
  SSL_set_fd(ssl_, fd_);
  if (server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (!verify_host.empty()) {
      in6_addr probe{};
      if (inet_pton(AF_INET, verify_host.c_str(), &probe) == 1 ||
          inet_pton(AF_INET6, verify_host.c_str(), &probe) == 1) {
        // An IP address is checked against the certificate's IP SANs.
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_),
                                          verify_host.c_str()) != 1) {
          return absl::InvalidArgumentError("cannot verify address '" +
                                            verify_host + "'");
        }
      } else {
        SSL_set_tlsext_host_name(ssl_, verify_host.c_str());
        SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(ssl_, verify_host.c_str()) != 1) {
          return absl::InvalidArgumentError("cannot verify host name '" +
                                            verify_host + "'");
        }
      }
    }
  }
  return absl::OkStatus();
}

std::string Conn::PeerCertificatePem() const {
  if (ssl_ == nullptr) return "";
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return "";
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "";
  std::string out;
  if (PEM_write_bio_X509(bio, cert) == 1) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    if (n > 0) out.assign(data, n);
  }
  BIO_free(bio);
  ERR_clear_error();
  return out;
}

IoOutcome Conn::SslOutcome(int ret, const char* op) {
  IoOutcome out;
  const int err = SSL_get_error(ssl_, ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      out.result = IoResult::kWantRead;
      return out;
    case SSL_ERROR_WANT_WRITE:
      out.result = IoResult::kWantWrite;
      return out;
    case SSL_ERROR_ZERO_RETURN:
      out.result = IoResult::kEof;
      return out;
    case SSL_ERROR_SYSCALL:
      if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
        // Peer vanished without close_notify (libpq does this on exit).
        out.result = IoResult::kEof;
        ERR_clear_error();
        return out;
      }
      out.result = IoResult::kError;
      out.error = absl::StrCat(op, ": ", std::strerror(errno));
      ERR_clear_error();
      return out;
    default: {
      out.result = IoResult::kError;
      out.error = absl::StrCat(op, ": ", tls::ErrorString());
      if (err == SSL_ERROR_SSL) {
        const long verify = SSL_get_verify_result(ssl_);
        if (verify != X509_V_OK) {
          absl::StrAppend(&out.error, " (certificate: ",
                          X509_verify_cert_error_string(verify), ")");
        }
      }
      return out;
    }
  }
}

IoOutcome Conn::Handshake() {
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1) return IoOutcome{};
  return SslOutcome(ret, "TLS handshake");
}

IoOutcome Conn::Read(char* buf, size_t cap) {
  IoOutcome out;
  if (ssl_ != nullptr) {
    ERR_clear_error();
    errno = 0;
    const int ret = SSL_read(ssl_, buf, static_cast<int>(cap));
    if (ret > 0) {
      out.bytes = ret;
      return out;
    }
    return SslOutcome(ret, "TLS read");
  }
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, cap, 0);
    if (n > 0) {
      out.bytes = n;
      return out;
    }
    if (n == 0) {
      out.result = IoResult::kEof;
      return out;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      out.result = IoResult::kWantRead;
      return out;
    }
    if (errno == ECONNRESET) {
      out.result = IoResult::kEof;
      return out;
    }
    out.result = IoResult::kError;
    out.error = absl::StrCat("read: ", std::strerror(errno));
    return out;
  }
}

IoOutcome Conn::Write(const char* data, size_t len) {
  IoOutcome out;
  if (ssl_ != nullptr) {
    ERR_clear_error();
    errno = 0;
    const int ret = SSL_write(ssl_, data, static_cast<int>(len));
    if (ret > 0) {
      out.bytes = ret;
      return out;
    }
    return SslOutcome(ret, "TLS write");
  }
  for (;;) {
    const ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
    if (n >= 0) {
      out.bytes = n;
      if (n == 0) out.result = IoResult::kWantWrite;
      return out;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      out.result = IoResult::kWantWrite;
      return out;
    }
    out.result = IoResult::kError;
    out.error = absl::StrCat("write: ", std::strerror(errno));
    return out;
  }
}

void Conn::Close() {
  if (closed_) return;
  closed_ = true;
  ::close(fd_);
}

bool Conn::PeerHungUp() const {
  if (closed_ || ssl_ != nullptr) return false;
  char byte;
  const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                    errno != EINTR);
}

}  // namespace warden::dataplane::net
