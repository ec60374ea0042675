#include "common/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace warden::tls {
namespace {

ContextPtr Wrap(SSL_CTX* ctx) { return ContextPtr(ctx, SSL_CTX_free); }

void CommonOptions(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // Partial writes and moving buffers: the proxy retries a write from its
  // own pending buffer, which may move between attempts.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
}

}  // namespace

std::string ErrorString() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

absl::StatusOr<ContextPtr> MakeServerContext(const std::string& cert_file,
                                             const std::string& key_file) {
  ContextPtr ctx = Wrap(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return absl::InternalError("SSL_CTX_new: " + ErrorString());
  CommonOptions(ctx.get());
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot load TLS certificate '", cert_file, "': ", ErrorString()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(),
                                  SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load TLS key '", key_file, "': ", ErrorString()));
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS key '", key_file, "' does not match certificate '",
                     cert_file, "'"));
  }
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  return ctx;
}

namespace {
// Accepts whatever chain the client sent; the application verifies it.
int AcceptForApplication(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) {
  return 1;
}
}  // namespace

absl::Status RequestClientCertificates(SSL_CTX* ctx,
                                       const std::string& ca_file) {
  if (!ca_file.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca_file.c_str());
    if (names == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot load client CA '", ca_file, "': ", ErrorString()));
    }
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
  }
  static const unsigned char kContext[] = "warden-client-cert";
  SSL_CTX_set_session_id_context(ctx, kContext, sizeof(kContext) - 1);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, AcceptForApplication);
  return absl::OkStatus();
}

absl::StatusOr<ContextPtr> MakeClientContext(const std::string& ca_file,
                                             bool verify) {
  ContextPtr ctx = Wrap(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return absl::InternalError("SSL_CTX_new: " + ErrorString());
  CommonOptions(ctx.get());
  if (!ca_file.empty() &&
      SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load CA bundle '", ca_file, "': ", ErrorString()));
  }
  SSL_CTX_set_verify(ctx.get(), verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                     nullptr);
  return ctx;
}

}  // namespace warden::tls
