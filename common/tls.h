// TLS contexts over OpenSSL, shared by every component that speaks TLS.
#ifndef WARDEN_COMMON_TLS_H_
#define WARDEN_COMMON_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace warden::tls {

using ContextPtr = std::shared_ptr<SSL_CTX>;

// MakeServerContext loads a PEM certificate chain and private key. TLS 1.2
// minimum, no compression, buffers released while idle (keeps idle
// connections small). Returns InvalidArgument naming the file on failure.
absl::StatusOr<ContextPtr> MakeServerContext(const std::string& cert_file,
                                             const std::string& key_file);

// MakeClientContext for outbound connections. With `verify` the peer chain
// must verify against `ca_file` (PEM bundle); host name checks are set per
// connection (see SetVerifyHost).
absl::StatusOr<ContextPtr> MakeClientContext(const std::string& ca_file,
                                             bool verify);

// RequestClientCertificates makes a server context ask clients for a
// certificate (advertising the subject of `ca_file`, when given, as the
// acceptable issuer) without failing the handshake over it: the handshake
// still proves the client holds the certificate's key, and the application
// verifies the chain itself, so that a refusal reaches the client as a
// readable error instead of a TLS alert.
absl::Status RequestClientCertificates(SSL_CTX* ctx,
                                       const std::string& ca_file);

// ErrorString drains OpenSSL's thread-local error queue into one line.
std::string ErrorString();

}  // namespace warden::tls

#endif  // WARDEN_COMMON_TLS_H_
