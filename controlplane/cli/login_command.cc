#include "controlplane/cli/login_command.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/files.h"
#include "common/x509.h"
#include "controlplane/idp/oidc_client.h"
#include "proto/warden/v1/control.grpc.pb.h"

namespace warden::controlplane::cli {
namespace {

namespace fs = std::filesystem;

int Fail(const absl::Status& status, std::ostream& err) {
  err << "wardenctl login: " << TerminalSafe(status.message()) << "\n";
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return kExitUsage;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kDeadlineExceeded:  // the device code expired
      return kExitAuth;
    case absl::StatusCode::kUnavailable:
      return kExitUnavailable;
    default:
      return kExitFailed;
  }
}

absl::StatusOr<std::string> ReadToken(const std::string& file,
                                      std::istream& in) {
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(in), {});
  } else {
    auto read = ReadFile(file);
    if (!read.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--token ", file, ": ", read.status().message()));
    }
    text = *std::move(read);
  }
  std::string token(absl::StripAsciiWhitespace(text));
  if (token.empty()) return absl::InvalidArgumentError("the token is empty");
  return token;
}

// The provider to run the device flow with: the one named, or the only one.
absl::StatusOr<warden::v1::LoginProvider> ChooseProvider(
    const warden::v1::ListProvidersResponse& list, const std::string& name) {
  std::vector<std::string> names;
  for (const auto& p : list.providers()) {
    if (p.name() == name) return p;
    names.push_back(p.name());
  }
  if (names.empty()) {
    return absl::FailedPreconditionError(
        "warden-control knows no identity provider (push a kind: "
        "IdentityProvider with the policies)");
  }
  if (name.empty() && names.size() == 1) return list.providers(0);
  return absl::InvalidArgumentError(absl::StrCat(
      name.empty() ? "several identity providers: pass --provider NAME of "
                   : absl::StrCat("no identity provider '", name, "'; known: "),
      absl::StrJoin(names, ", ")));
}

absl::Status WriteFile(const fs::path& path, const std::string& data,
                       mode_t mode) {
  if (absl::Status s = WriteFileDurably(path.string(), data); !s.ok()) return s;
  chmod(path.c_str(), mode);
  return absl::OkStatus();
}

// `psql "..."` for the files written; placeholders for what is not known.
std::string PsqlLine(const LoginOptions& options, const std::string& user,
                     const fs::path& cert, const fs::path& key) {
  std::string host = "PROXY_HOST", port = "PROXY_PORT";
  if (!options.proxy.empty()) {
    const size_t colon = options.proxy.rfind(':');
    host = options.proxy.substr(0, colon);
    if (colon != std::string::npos) port = options.proxy.substr(colon + 1);
    if (absl::StartsWith(host, "[")) host = host.substr(1, host.size() - 2);
  }
  std::string line = absl::StrCat(
      "psql \"host=", host, " port=", port, " user=", user, " dbname=",
      options.dbname.empty() ? "DBNAME" : options.dbname);
  if (options.proxy_ca_file.empty()) {
    absl::StrAppend(&line, " sslmode=require");
  } else {
    absl::StrAppend(&line, " sslmode=verify-full sslrootcert=",
                    fs::absolute(options.proxy_ca_file).string());
  }
  absl::StrAppend(&line, " sslcert=", cert.string(), " sslkey=", key.string(),
                  "\"");
  return line;
}

}  // namespace

int RunLogin(const LoginOptions& options, std::istream& in, std::ostream& out,
             std::ostream& err) {
  absl::Duration timeout;
  if (!absl::ParseDuration(options.connection.timeout, &timeout) ||
      timeout <= absl::ZeroDuration()) {
    return Fail(absl::InvalidArgumentError(
                    absl::StrCat("--timeout '", options.connection.timeout,
                                 "' is not a positive duration (e.g. 10s)")),
                err);
  }
  Connection connection = options.connection;
  connection.token.clear();  // Login takes no API token.
  auto channel = MakeChannel(connection);
  if (!channel.ok()) return Fail(channel.status(), err);
  auto stub = warden::v1::Login::NewStub(*channel);
  auto prepare = [&](grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() +
                          absl::ToChronoMilliseconds(timeout));
  };
  auto rpc_failed = [&](const grpc::Status& status) {
    err << "error: "
        << absl::StatusCodeToString(
               static_cast<absl::StatusCode>(status.error_code()))
        << ": " << TerminalSafe(status.error_message()) << "\n";
    return ExitForGrpc(status);
  };

  std::string token;
  if (!options.token_file.empty()) {
    auto read = ReadToken(options.token_file, in);
    if (!read.ok()) return Fail(read.status(), err);
    token = *std::move(read);
  } else {
    warden::v1::ListProvidersResponse list;
    grpc::ClientContext context;
    prepare(&context);
    if (grpc::Status s = stub->ListProviders(&context, {}, &list); !s.ok()) {
      return rpc_failed(s);
    }
    auto provider = ChooseProvider(list, options.provider);
    if (!provider.ok()) return Fail(provider.status(), err);
    idp::DeviceFlowOptions flow;
    flow.fetch.ca_file = options.idp_ca_file;
    flow.fetch.user_agent = "wardenctl";
    flow.client_id = provider->client_id();
    flow.prompt = [&err, &provider](const idp::DeviceAuthorization& device) {
      err << "To log in with " << TerminalSafe(provider->name()) << ", open "
          << TerminalSafe(device.verification_uri) << " and enter the code "
          << TerminalSafe(device.user_code) << "\n";
      if (!device.verification_uri_complete.empty()) {
        err << "(or open " << TerminalSafe(device.verification_uri_complete)
            << ")\n";
      }
      err << "Waiting for approval..." << std::endl;
    };
    auto id_token = idp::RunDeviceFlow(provider->issuer(), flow);
    if (!id_token.ok()) return Fail(id_token.status(), err);
    token = *std::move(id_token);
  }

  auto key = x509::GenerateKey();
  if (!key.ok()) return Fail(key.status(), err);
  auto csr = x509::MakeRequest(*key, "wardenctl-login");
  if (!csr.ok()) return Fail(csr.status(), err);
  warden::v1::IssueUserCertificateRequest request;
  request.set_id_token(token);
  request.set_csr_pem(*csr);
  request.set_provider(options.provider);
  warden::v1::IssueUserCertificateResponse issued;
  {
    grpc::ClientContext context;
    prepare(&context);
    if (grpc::Status s = stub->IssueUserCertificate(&context, request, &issued);
        !s.ok()) {
      return rpc_failed(s);
    }
  }

  std::string dir = options.out_dir;
  if (dir.empty()) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
      return Fail(absl::InvalidArgumentError("no HOME: pass --out DIR"), err);
    }
    dir = absl::StrCat(home, "/.warden");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  chmod(dir.c_str(), 0700);
  const fs::path base = fs::absolute(dir);
  const fs::path key_path = base / "client.key", pk8_path = base / "client.pk8",
                 cert_path = base / "client.crt", ca_path = base / "ca.crt";
  auto der = x509::PrivateKeyDer(*key);
  if (!der.ok()) return Fail(der.status(), err);
  for (const auto& [path, data, mode] :
       std::vector<std::tuple<fs::path, std::string, mode_t>>{
           {key_path, *key, 0600},
           {pk8_path, *der, 0600},
           {cert_path, issued.certificate_pem(), 0644},
           {ca_path, issued.ca_certificate_pem(), 0644}}) {
    if (absl::Status s = WriteFile(path, data, mode); !s.ok()) {
      return Fail(s, err);
    }
  }
  const std::string until = absl::FormatTime(
      "%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(issued.not_after().seconds()),
      absl::UTCTimeZone());
  const std::string psql = PsqlLine(options, issued.user(), cert_path, key_path);
  if (options.format == Format::kJson) {
    WriteJson({{"user", issued.user()},
               {"groups", issued.groups()},
               {"provider", issued.provider()},
               {"not_after", until},
               {"certificate", cert_path.string()},
               {"key", key_path.string()},
               {"key_pk8", pk8_path.string()},
               {"ca", ca_path.string()},
               {"psql", psql}},
              out);
    return kExitOk;
  }
  // What warden-control answered is printed escaped (TerminalSafe), as in
  // every text output of wardenctl.
  err << "certificate for " << TerminalSafe(issued.user()) << " ("
      << TerminalSafe(issued.groups().empty()
                          ? std::string("no groups")
                          : absl::StrCat("groups ",
                                         absl::StrJoin(issued.groups(), ", ")))
      << "; " << TerminalSafe(issued.provider()) << ") valid until " << until
      << " in " << TerminalSafe(base.string()) << "\n";
  out << TerminalSafe(psql) << "\n";
  return kExitOk;
}

}  // namespace warden::controlplane::cli
