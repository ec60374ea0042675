#include "common/proxy_identity.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace warden {
namespace {

constexpr absl::string_view kPrefix = "spiffe://warden/proxy/";
constexpr absl::string_view kServesPrefix = "spiffe://warden/proxy-serves/";

}  // namespace

absl::Status ValidateProxyName(absl::string_view what,
                               absl::string_view value) {
  bool ok = !value.empty() && value.size() <= 64 && value[0] != '.';
  for (char c : value) {
    ok = ok && (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, " must be 1-64 characters of [A-Za-z0-9._-] not starting with "
            "'.', got \"",
      absl::CHexEscape(value.substr(0, 80)), "\""));
}

std::string LookAlikeKey(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  while (!lower.empty() &&
         (lower.back() == '.' || lower.back() == '_' || lower.back() == '-')) {
    lower.pop_back();
  }
  return lower;
}

absl::Status CheckNotReserved(absl::string_view what, absl::string_view value) {
  const std::string lower = LookAlikeKey(value);
  if (lower == "control" || lower == "warden-control") {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " \"", value, "\" is reserved for warden-control's own audit "
        "events"));
  }
  return absl::OkStatus();
}

std::string ProxyUri(const ProxyIdentity& identity) {
  return absl::StrCat(kPrefix, identity.environment, "/", identity.proxy_id);
}

bool ProxyIdentity::Serves(absl::string_view env) const {
  if (env == environment) return true;
  for (const std::string& e : also_serves) {
    if (e == env) return true;
  }
  return false;
}

std::string ProxyServesUri(absl::string_view environment) {
  return absl::StrCat(kServesPrefix, environment);
}

absl::StatusOr<ProxyIdentity> ProxyIdentityFromUris(
    const std::vector<std::string>& uris) {
  std::vector<std::string> serves;
  for (const std::string& uri : uris) {
    if (!absl::StartsWith(uri, kServesPrefix)) continue;
    std::string env(absl::string_view(uri).substr(kServesPrefix.size()));
    if (ValidateProxyName("environment", env).ok()) {
      serves.push_back(std::move(env));
    }
  }
  for (const std::string& uri : uris) {
    if (!absl::StartsWith(uri, kPrefix)) continue;
    std::vector<std::string> parts =
        absl::StrSplit(absl::string_view(uri).substr(kPrefix.size()), '/');
    if (parts.size() != 2) continue;
    ProxyIdentity identity{parts[1], parts[0]};
    if (ValidateProxyName("proxy id", identity.proxy_id).ok() &&
        ValidateProxyName("environment", identity.environment).ok()) {
      for (std::string& env : serves) {
        if (env != identity.environment && !identity.Serves(env)) {
          identity.also_serves.push_back(std::move(env));
        }
      }
      return identity;
    }
  }
  return absl::NotFoundError("no spiffe://warden/proxy/<environment>/<id> URI");
}

}  // namespace warden
