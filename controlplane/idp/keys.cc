#include "controlplane/idp/keys.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/jwt.h"
#include "policy/lang/compile.h"

namespace warden::controlplane::idp {
namespace {

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

struct Sink {
  std::string body;
  size_t max = 0;
  bool too_big = false;
};

size_t Write(char* data, size_t size, size_t n, void* user) {
  Sink* sink = static_cast<Sink*>(user);
  if (sink->body.size() + size * n > sink->max) {
    sink->too_big = true;
    return 0;  // aborts the transfer
  }
  sink->body.append(data, size * n);
  return size * n;
}

}  // namespace

absl::StatusOr<std::string> HttpsGet(const std::string& url,
                                     const FetchOptions& options) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (!absl::StartsWith(url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat(url, ": only https:// URLs are fetched"));
  }
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  if (!curl) return absl::ResourceExhaustedError("curl_easy_init failed");
  Sink sink;
  sink.max = options.max_bytes;
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options.timeout)));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
  }
  curl_easy_setopt(c, CURLOPT_USERAGENT, "warden-control");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(c);
  if (sink.too_big) {
    return absl::ResourceExhaustedError(absl::StrCat(
        url, ": the answer is larger than ", options.max_bytes, " bytes"));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(
        url, ": ", error[0] != '\0' ? error : curl_easy_strerror(rc)));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    return absl::UnavailableError(
        absl::StrCat(url, ": HTTP ", status, " (expected 200)"));
  }
  return std::move(sink.body);
}

absl::Status ResolveKeys(warden::v1::IdentityProviderSpec* idp,
                         const FetchOptions& options) {
  const std::string who = absl::StrCat("identity provider ", idp->name());
  std::string jwks_uri = idp->jwks_uri();
  if (jwks_uri.empty()) {
    const std::string url =
        absl::StrCat(absl::StripSuffix(idp->issuer(), "/"),
                     "/.well-known/openid-configuration");
    auto body = HttpsGet(url, options);
    if (!body.ok()) {
      return absl::Status(body.status().code(),
                          absl::StrCat(who, ": discovery: ",
                                       body.status().message()));
    }
    const nlohmann::json doc =
        nlohmann::json::parse(*body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": ", url, " is not a JSON object"));
    }
    const auto issuer = doc.find("issuer");
    if (issuer == doc.end() || !issuer->is_string() ||
        issuer->get<std::string>() != idp->issuer()) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": ", url, " names issuer '",
          issuer != doc.end() && issuer->is_string()
              ? issuer->get<std::string>()
              : "",
          "', not '", idp->issuer(), "'"));
    }
    const auto uri = doc.find("jwks_uri");
    if (uri == doc.end() || !uri->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": ", url, " has no jwks_uri"));
    }
    jwks_uri = uri->get<std::string>();
  }
  auto jwks = HttpsGet(jwks_uri, options);
  if (!jwks.ok()) {
    return absl::Status(jwks.status().code(),
                        absl::StrCat(who, ": keys: ", jwks.status().message()));
  }
  auto keys = jwt::KeySet::FromJwks(*jwks);
  if (!keys.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": ", jwks_uri, ": ", keys.status().message()));
  }
  idp->set_jwks_uri(jwks_uri);
  idp->set_jwks(*std::move(jwks));
  return absl::OkStatus();
}

absl::Status ResolveAll(warden::v1::PolicyBundle* bundle,
                        const FetchOptions& options) {
  for (auto& idp : *bundle->mutable_identity_providers()) {
    if (absl::Status s = ResolveKeys(&idp, options); !s.ok()) return s;
  }
  bundle->set_digest(policy::lang::ContentDigest(*bundle));
  return absl::OkStatus();
}

}  // namespace warden::controlplane::idp
