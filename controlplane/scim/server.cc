#include "controlplane/scim/server.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "httplib.h"
#include "spdlog/spdlog.h"

namespace warden::controlplane::scim {
namespace {

// Loads the chain (leaf first) and key into `ctx`.
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                &BIO_free);
}

// Loads the chain (leaf first) and key into `ctx`.
bool UseCertificate(SSL_CTX* ctx, const std::string& chain_pem,
                    const std::string& key_pem) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  BioPtr chain = MemoryBio(chain_pem);
  if (chain == nullptr) return false;
  X509* leaf = PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
    X509_free(leaf);
    return false;
  }
  X509_free(leaf);
  while (X509* extra =
             PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      return false;
    }
  }
  ERR_clear_error();  // the end of the PEM stream
  BioPtr key_bio = MemoryBio(key_pem);
  if (key_bio == nullptr) return false;
  EVP_PKEY* key =
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  const bool ok = key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
                  SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  return ok;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const Service* service, const std::string& host, uint16_t port,
    const std::string& certificate_chain_pem, const std::string& key_pem) {
  std::unique_ptr<Server> server(new Server());
  server->http_ = std::make_unique<httplib::SSLServer>(
      [&](SSL_CTX& ctx) {
        return UseCertificate(&ctx, certificate_chain_pem, key_pem);
      });
  httplib::SSLServer& http = *server->http_;
  if (!http.is_valid()) {
    return absl::InvalidArgumentError(
        "SCIM: cannot use the TLS certificate and key");
  }
  // Bounded requests: SCIM bodies are small; a group PATCH with thousands
  // of members stays well below this.
  http.set_payload_max_length(8 << 20);
  // Responses go out as headers then body: without this, Nagle and the
  // client's delayed ACK add 40 ms to every request.
  http.set_tcp_nodelay(true);
  // Provisioning clients keep one connection for a whole sync.
  http.set_keep_alive_max_count(1000);
  http.set_read_timeout(30, 0);
  http.set_write_timeout(30, 0);
  const auto handle = [service](const httplib::Request& req,
                                httplib::Response& res) {
    Request request;
    request.method = req.method;
    request.path = req.path;
    for (const auto& [name, value] : req.params) request.query[name] = value;
    request.body = req.body;
    request.authorization = req.get_header_value("Authorization");
    std::string host = req.get_header_value("Host");
    if (host.empty()) host = "localhost";
    request.base_url = absl::StrCat("https://", host, "/scim/v2");
    const Response response = service->Handle(request, absl::Now());
    res.status = response.status;
    if (!response.location.empty()) {
      res.set_header("Location", response.location);
    }
    if (!response.etag.empty()) res.set_header("ETag", response.etag);
    if (!response.body.empty()) {
      res.set_content(response.body, "application/scim+json");
    }
    spdlog::info("scim: {} {} -> {}", req.method, req.path, response.status);
  };
  const std::string pattern = "/scim/v2(/.*)?";
  http.Get(pattern, handle);
  http.Post(pattern, handle);
  http.Put(pattern, handle);
  http.Patch(pattern, handle);
  http.Delete(pattern, handle);
  int bound = port == 0 ? http.bind_to_any_port(host)
                        : (http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(
        absl::StrCat("SCIM: cannot listen on ", host, ":", port));
  }
  server->port_ = static_cast<uint16_t>(bound);
  server->thread_ = std::thread([&http] { http.listen_after_bind(); });
  return server;
}

Server::~Server() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace warden::controlplane::scim
