#include "controlplane/cli/remote_proxies.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proto/warden/v1/control.grpc.pb.h"

namespace warden::controlplane::cli {
namespace {

std::unique_ptr<warden::v1::ProxyEnrollment::Stub> EnrollmentStub(
    const Remote& remote) {
  return warden::v1::ProxyEnrollment::NewStub(remote.channel());
}

// An enrolled proxy as every proxies command shows it.
Json ProxyJson(const warden::v1::EnrolledProxy& p) {
  return {{"environment", p.environment()},
          {"proxy_id", p.proxy_id()},
          {"certificate_serial", p.certificate_serial()},
          {"enrolled_at", TimeJson(p.enrolled_at())},
          {"enrolled_by", p.enrolled_by()},
          {"renewed_at", TimeJson(p.renewed_at())},
          {"renewals", p.renewals()},
          {"revoked", p.revoked()},
          {"revoked_at", TimeJson(p.revoked_at())},
          {"revoked_by", p.revoked_by()},
          {"revoke_reason", p.revoke_reason()}};
}

void PrintProxiesText(const Json& list, std::ostream& out) {
  out << absl::StrFormat("%-32s %-8s %-34s %-20s %s\n", "PROXY", "STATE",
                         "CERTIFICATE", "ENROLLED", "BY");
  for (const Json& p : list["proxies"]) {
    const bool revoked = BoolAt(p, "revoked");
    const std::string by = StringAt(p, "enrolled_by");
    out << absl::StrFormat(
        "%-32s %-8s %-34s %-20s %s\n",
        TerminalSafe(absl::StrCat(StringAt(p, "environment"), "/",
                                  StringAt(p, "proxy_id"))),
        revoked ? "revoked" : "active",
        TerminalSafe(StringAt(p, "certificate_serial")),
        StringAt(p, "enrolled_at"),
        TerminalSafe(revoked ? absl::StrCat(by, "; revoked by ",
                                            StringAt(p, "revoked_by"), ": ",
                                            StringAt(p, "revoke_reason"))
                             : by));
  }
}

// Names the proxy as the operator did (ENVIRONMENT/ID).
void PrintRevokedText(const std::string& named, std::ostream& out) {
  out << "revoked " << TerminalSafe(named)
      << "; its next call to warden-control is refused\n";
}

}  // namespace

int RunProxiesList(const ProxiesListOptions& options, std::ostream& out,
                   std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::ListProxiesResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      EnrollmentStub(remote)->ListProxies(&context, {}, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  Json proxies = Json::array();
  for (const auto& p : response.proxies()) proxies.push_back(ProxyJson(p));
  return Report(options.format, {{"proxies", std::move(proxies)}},
                PrintProxiesText, out);
}

int RunProxiesRevoke(const ProxiesRevokeOptions& options, std::ostream& out,
                     std::ostream& err) {
  const size_t slash = options.proxy.find('/');
  if (slash == std::string::npos || slash == 0 ||
      slash + 1 == options.proxy.size()) {
    return UsageError(
        "name the proxy as ENVIRONMENT/ID (wardenctl proxies list)", err);
  }
  if (options.reason.empty()) {
    return UsageError("--reason is required (it is recorded in the audit log)",
                      err);
  }
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::RevokeProxyRequest request;
  request.set_environment(options.proxy.substr(0, slash));
  request.set_proxy_id(options.proxy.substr(slash + 1));
  request.set_reason(options.reason);
  warden::v1::RevokeProxyResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      EnrollmentStub(remote)->RevokeProxy(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  return Report(
      options.format, ProxyJson(response.proxy()),
      [&](const Json&, std::ostream& out) {
        PrintRevokedText(options.proxy, out);
      },
      out);
}

}  // namespace warden::controlplane::cli
