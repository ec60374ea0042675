// Benchmarks that act as proxies enroll like one: a bootstrap token from the
// admin token, then ProxyEnrollment.Enroll with a fresh P-256 key, giving an
// mTLS channel of their own (one connection per proxy).
#ifndef WARDEN_TESTS_BENCH_ENROLL_H_
#define WARDEN_TESTS_BENCH_ENROLL_H_

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/x509.h"
#include "proto/warden/v1/control.grpc.pb.h"

namespace warden::bench {

// The file's text without trailing whitespace.
inline std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

// Enrolls proxy `id` of `environment` through `admin` (TLS, no client
// certificate) with `bearer` ("Bearer wdn_..."), and returns an mTLS channel
// of its own to `server`.
inline absl::StatusOr<std::shared_ptr<grpc::Channel>> EnrollProxy(
    const std::shared_ptr<grpc::Channel>& admin, const std::string& bearer,
    const std::string& server, const std::string& ca_pem,
    const std::string& id, const std::string& environment, int distinct) {
  warden::v1::CreateTokenRequest create;
  create.set_name("boot-" + id);
  create.add_scopes(warden::v1::TOKEN_SCOPE_PROXY_ENROLL);
  create.set_environment(environment);
  create.set_proxy_id(id);
  warden::v1::CreateTokenResponse created;
  grpc::ClientContext create_ctx;
  create_ctx.AddMetadata("authorization", bearer);
  grpc::Status s = warden::v1::TokenService::NewStub(admin)->CreateToken(
      &create_ctx, create, &created);
  if (!s.ok()) return absl::UnavailableError("bootstrap token: " + s.error_message());
  auto key = x509::GenerateKey();
  if (!key.ok()) return key.status();
  auto csr = x509::MakeRequest(*key, id);
  if (!csr.ok()) return csr.status();
  warden::v1::EnrollRequest enroll;
  enroll.set_csr_pem(*csr);
  warden::v1::EnrollResponse cert;
  grpc::ClientContext enroll_ctx;
  enroll_ctx.AddMetadata("authorization", "Bearer " + created.token());
  s = warden::v1::ProxyEnrollment::NewStub(admin)->Enroll(&enroll_ctx, enroll,
                                                           &cert);
  if (!s.ok()) return absl::UnavailableError("enroll: " + s.error_message());
  grpc::SslCredentialsOptions mtls;
  mtls.pem_root_certs = ca_pem;
  mtls.pem_private_key = *key;
  mtls.pem_cert_chain = cert.certificate_pem();
  grpc::ChannelArguments args;
  args.SetInt("grpc.channel_id", distinct);  // distinct connections.
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(server, grpc::SslCredentials(mtls), args);
}

}  // namespace warden::bench

#endif  // WARDEN_TESTS_BENCH_ENROLL_H_
