#include "dataplane/session/upstream_connector.h"

#include <sys/socket.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "dataplane/net/address.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/sqlstate.h"

namespace warden::dataplane::session {

std::optional<std::vector<UpstreamConnector::Address>>
UpstreamConnector::LiteralAddresses() const {
  sockaddr_storage probe{};
  socklen_t probe_len = 0;
  if (!net::ParseAddress(upstream_->host, upstream_->port, &probe,
                         &probe_len)) {
    return std::nullopt;
  }
  return std::vector<Address>{{upstream_->host, upstream_->port}};
}

bool UpstreamConnector::wants_tls() const {
  return upstream_->tls_mode != config::UpstreamTlsMode::kDisable;
}

std::string UpstreamConnector::FirstMessage() const {
  if (!wants_tls()) return StartupMessage();
  std::string request;
  pgwire::WriteSslRequest(&request);
  return request;
}

std::string UpstreamConnector::StartupMessage() const {
  std::vector<std::pair<std::string, std::string>> params;
  params.reserve(params_.size() + 2);
  params.emplace_back("user", user_);
  params.emplace_back("database", upstream_->database);
  for (const auto& p : params_) params.push_back(p);
  std::string message;
  pgwire::WriteStartupMessage(&message, params);
  return message;
}

UpstreamConnector::SslAnswer UpstreamConnector::OnSslAnswer(
    absl::string_view buf) const {
  SslAnswer answer;
  if (buf.size() > 1) {
    answer.failure =
        Failure{pgwire::kConnectionFailure,
                "upstream sent unexpected data after its SSL response",
                warden::v1::SESSION_END_REASON_UPSTREAM};
    return answer;
  }
  if (buf.empty() || buf[0] != 'S') {
    answer.failure =
        Failure{pgwire::kConnectionFailure,
                "the upstream database refused TLS, which this database's "
                "configuration requires",
                warden::v1::SESSION_END_REASON_UPSTREAM};
    return answer;
  }
  answer.context = tls_;
  if (upstream_->tls_mode == config::UpstreamTlsMode::kVerifyFull) {
    answer.verify_host = upstream_->server_name;
  }
  return answer;
}

UpstreamConnector::Failure UpstreamConnector::LookupFailed(
    const absl::Status& status) const {
  return {pgwire::kConnectionFailure,
          absl::StrCat("cannot resolve upstream host '", upstream_->host,
                       "': ", status.message()),
          warden::v1::SESSION_END_REASON_UPSTREAM};
}

UpstreamConnector::Failure UpstreamConnector::ConnectFailed(int error) const {
  std::string message =
      absl::StrCat("cannot connect to the upstream database at ",
                   upstream_->host, ":", upstream_->port);
  if (error != 0) absl::StrAppend(&message, ": ", std::strerror(error));
  return {pgwire::kConnectionFailure, std::move(message),
          warden::v1::SESSION_END_REASON_UPSTREAM};
}

UpstreamConnector::Failure UpstreamConnector::TlsFailed(
    const std::string& error) const {
  return {pgwire::kConnectionFailure,
          absl::StrCat("TLS with the upstream database failed: ",
                       error.empty() ? "connection closed" : error),
          warden::v1::SESSION_END_REASON_UPSTREAM};
}

UpstreamConnector::Failure UpstreamConnector::TimedOut() const {
  return {pgwire::kConnectionFailure,
          absl::StrCat("timed out connecting to the upstream database at ",
                       upstream_->host, ":", upstream_->port),
          warden::v1::SESSION_END_REASON_UPSTREAM};
}

UpstreamConnector::Failure UpstreamConnector::TlsNotStarted(
    const absl::Status& status) {
  return {pgwire::kInternalError, std::string(status.message()),
          warden::v1::SESSION_END_REASON_INTERNAL};
}

}  // namespace warden::dataplane::session
