#include "controlplane/cli/remote_identities.h"

#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "proto/warden/v1/control.grpc.pb.h"

namespace warden::controlplane::cli {
namespace {

std::unique_ptr<warden::v1::DirectoryService::Stub> DirectoryStub(
    const Remote& remote) {
  return warden::v1::DirectoryService::NewStub(remote.channel());
}

// A directory user as every identities command shows it ("modified_at"
// is "" when unset).
Json IdentityJson(const warden::v1::DirectoryIdentity& i) {
  return Json{{"id", i.id()},
              {"user_name", i.user_name()},
              {"active", i.active()},
              {"groups",
               std::vector<std::string>(i.groups().begin(), i.groups().end())},
              {"emails",
               std::vector<std::string>(i.emails().begin(), i.emails().end())},
              {"external_id", i.external_id()},
              {"modified_at", TimeText(i.modified_at())}};
}

void PrintIdentitiesText(const Json& list, std::ostream& out) {
  out << absl::StrFormat("%-32s %-9s %-20s %s\n", "USER", "STATE", "MODIFIED",
                         "GROUPS");
  for (const Json& i : list["identities"]) {
    out << absl::StrFormat(
        "%-32s %-9s %-20s %s\n", TerminalSafe(StringAt(i, "user_name")),
        BoolAt(i, "active") ? "active" : "inactive", StringAt(i, "modified_at"),
        TerminalSafe(absl::StrJoin(StringsAt(i, "groups"), ",")));
  }
}

// What activating (`activate`) or deactivating did.
void PrintSetActiveText(bool activate, const Json& result, std::ostream& out) {
  const std::string user = TerminalSafe(StringAt(result, "user_name"));
  if (activate) {
    out << (BoolAt(result, "refused") ? "lifted the admin's hold on "
                                      : "activated ")
        << user;
  } else {
    out << "deactivated " << user
        << (BoolAt(result, "created") ? " (not in the directory before)" : "")
        << "; proxies refuse them and close their sessions with the next "
           "revision";
  }
  if (const std::string note = StringAt(result, "note"); !note.empty()) {
    out << " (" << TerminalSafe(note) << ")";
  }
  out << "\n";
}

}  // namespace

int RunIdentitiesList(const IdentitiesListOptions& options, std::ostream& out,
                      std::ostream& err) {
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::ListIdentitiesRequest request;
  request.set_user_name(options.user);
  warden::v1::ListIdentitiesResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      DirectoryStub(remote)->ListIdentities(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  Json identities = Json::array();
  for (const auto& i : response.identities()) {
    identities.push_back(IdentityJson(i));
  }
  return Report(options.format, {{"identities", std::move(identities)}},
                PrintIdentitiesText, out);
}

int RunIdentitiesSetActive(const IdentitiesSetActiveOptions& options,
                           std::ostream& out, std::ostream& err) {
  if (options.user.empty()) return UsageError("name the user", err);
  Remote remote;
  if (int rc = remote.Open(options, err); rc != kExitOk) return rc;
  warden::v1::SetIdentityActiveRequest request;
  request.set_user_name(options.user);
  request.set_active(options.active);
  request.set_reason(options.reason);
  warden::v1::SetIdentityActiveResponse response;
  grpc::ClientContext context;
  remote.Prepare(&context);
  const grpc::Status status =
      DirectoryStub(remote)->SetIdentityActive(&context, request, &response);
  if (!status.ok()) return remote.Failed(status, out, err);
  Json result = IdentityJson(response.identity());
  result["created"] = response.created();
  result["refused"] = response.refused();
  if (!response.note().empty()) result["note"] = response.note();
  return Report(
      options.format, result,
      [&](const Json& result, std::ostream& out) {
        PrintSetActiveText(options.active, result, out);
      },
      out);
}

}  // namespace warden::controlplane::cli
