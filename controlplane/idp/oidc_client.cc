#include "controlplane/idp/oidc_client.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace warden::controlplane::idp {
namespace {

using nlohmann::json;

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

// One HTTPS exchange with the checks every request gets; `post_body`
// non-null makes it a form POST (without redirects).
absl::StatusOr<HttpResponse> Perform(const std::string& url,
                                     const std::string* post_body,
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
  if (post_body == nullptr) {
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
  } else {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body->c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(post_body->size()));
  }
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options.timeout)));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, options.ca_file.c_str());
  }
  curl_easy_setopt(c, CURLOPT_USERAGENT, options.user_agent.c_str());
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
  HttpResponse out;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  out.body = std::move(sink.body);
  return out;
}

std::string FormEncode(
    const std::vector<std::pair<std::string, std::string>>& form) {
  std::string out;
  for (const auto& [name, value] : form) {
    if (!out.empty()) out += '&';
    for (const std::string* part : {&name, &value}) {
      char* escaped = curl_easy_escape(nullptr, part->data(),
                                       static_cast<int>(part->size()));
      out += escaped != nullptr ? escaped : "";
      curl_free(escaped);
      if (part == &name) out += '=';
    }
  }
  return out;
}

std::string StringField(const json& doc, const char* name) {
  const auto it = doc.find(name);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

absl::Duration SecondsField(const json& doc, const char* name,
                            absl::Duration fallback) {
  const auto it = doc.find(name);
  if (it == doc.end() || !it->is_number_integer() || it->get<int64_t>() <= 0) {
    return fallback;
  }
  return absl::Seconds(it->get<int64_t>());
}

absl::StatusOr<json> JsonObject(const std::string& url,
                                const std::string& body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(url, " did not answer a JSON object"));
  }
  return doc;
}

absl::StatusOr<DeviceAuthorization> Authorize(const std::string& endpoint,
                                              const DeviceFlowOptions& options) {
  auto answer = HttpsPostForm(
      endpoint, {{"client_id", options.client_id}, {"scope", options.scope}},
      options.fetch);
  if (!answer.ok()) return answer.status();
  auto doc = JsonObject(endpoint, answer->body);
  if (!doc.ok()) return doc.status();
  if (answer->status != 200) {
    return absl::UnauthenticatedError(absl::StrCat(
        endpoint, ": HTTP ", answer->status, ": ", StringField(*doc, "error"),
        " ", StringField(*doc, "error_description")));
  }
  DeviceAuthorization out;
  out.device_code = StringField(*doc, "device_code");
  out.user_code = StringField(*doc, "user_code");
  out.verification_uri = StringField(*doc, "verification_uri");
  out.verification_uri_complete =
      StringField(*doc, "verification_uri_complete");
  out.expires_in = SecondsField(*doc, "expires_in", absl::Minutes(10));
  out.interval = SecondsField(*doc, "interval", absl::Seconds(5));
  if (out.device_code.empty() || out.user_code.empty() ||
      out.verification_uri.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        endpoint,
        " did not answer device_code, user_code and verification_uri"));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> HttpsGet(const std::string& url,
                                     const FetchOptions& options) {
  auto answer = Perform(url, nullptr, options);
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) {
    return absl::UnavailableError(
        absl::StrCat(url, ": HTTP ", answer->status, " (expected 200)"));
  }
  return std::move(answer->body);
}

absl::StatusOr<HttpResponse> HttpsPostForm(
    const std::string& url,
    const std::vector<std::pair<std::string, std::string>>& form,
    const FetchOptions& options) {
  const std::string body = FormEncode(form);
  return Perform(url, &body, options);
}

absl::StatusOr<Discovery> Discover(const std::string& issuer,
                                   const FetchOptions& options) {
  const std::string url = absl::StrCat(absl::StripSuffix(issuer, "/"),
                                       "/.well-known/openid-configuration");
  auto body = HttpsGet(url, options);
  if (!body.ok()) return body.status();
  auto doc = JsonObject(url, *body);
  if (!doc.ok()) return doc.status();
  const std::string named = StringField(*doc, "issuer");
  if (named != issuer) {
    return absl::InvalidArgumentError(absl::StrCat(
        url, " names issuer '", named, "', not '", issuer, "'"));
  }
  Discovery out;
  out.jwks_uri = StringField(*doc, "jwks_uri");
  out.token_endpoint = StringField(*doc, "token_endpoint");
  out.device_authorization_endpoint =
      StringField(*doc, "device_authorization_endpoint");
  return out;
}

absl::StatusOr<std::string> RunDeviceFlow(const std::string& issuer,
                                          const DeviceFlowOptions& options) {
  auto discovery = Discover(issuer, options.fetch);
  if (!discovery.ok()) return discovery.status();
  if (discovery->device_authorization_endpoint.empty() ||
      discovery->token_endpoint.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        issuer,
        " offers no device authorization (its discovery document lists no "
        "device_authorization_endpoint or token_endpoint); get an ID token "
        "another way and use --token"));
  }
  auto device =
      Authorize(discovery->device_authorization_endpoint, options);
  if (!device.ok()) return device.status();
  if (options.prompt) options.prompt(*device);
  const auto sleep = options.sleep ? options.sleep
                                   : [](absl::Duration d) { absl::SleepFor(d); };
  const std::string& endpoint = discovery->token_endpoint;
  absl::Duration interval = device->interval;
  const absl::Time deadline = absl::Now() + device->expires_in;
  while (true) {
    if (absl::Now() + interval > deadline) {
      return absl::DeadlineExceededError(
          "the device code expired before the login was approved; run "
          "wardenctl login again");
    }
    sleep(interval);
    auto answer = HttpsPostForm(
        endpoint,
        {{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
         {"device_code", device->device_code},
         {"client_id", options.client_id}},
        options.fetch);
    if (!answer.ok()) return answer.status();
    auto doc = JsonObject(endpoint, answer->body);
    if (!doc.ok()) return doc.status();
    if (answer->status == 200) {
      std::string id_token = StringField(*doc, "id_token");
      if (id_token.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            endpoint, " answered no id_token (is 'openid' in the scope?)"));
      }
      return id_token;
    }
    const std::string error = StringField(*doc, "error");
    if (error == "authorization_pending") continue;
    if (error == "slow_down") {
      interval += absl::Seconds(5);  // RFC 8628 section 3.5
      continue;
    }
    if (error == "expired_token") {
      return absl::DeadlineExceededError(
          "the device code expired before the login was approved; run "
          "wardenctl login again");
    }
    if (error == "access_denied") {
      return absl::PermissionDeniedError("the login was denied at the provider");
    }
    return absl::UnauthenticatedError(
        absl::StrCat(endpoint, ": HTTP ", answer->status, ": ", error, " ",
                     StringField(*doc, "error_description")));
  }
}

}  // namespace warden::controlplane::idp
