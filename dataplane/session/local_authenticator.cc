#include "dataplane/session/local_authenticator.h"

#include <algorithm>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "dataplane/auth/scram.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/sqlstate.h"

namespace warden::dataplane::session {
namespace {

warden::v1::IdentityKind KindOf(const std::string& kind) {
  if (kind == "agent") return warden::v1::IDENTITY_KIND_AGENT;
  if (kind == "service") return warden::v1::IDENTITY_KIND_SERVICE;
  return warden::v1::IDENTITY_KIND_HUMAN;
}

AuthStep Failure(absl::Status why, const std::string& user) {
  AuthStep step;
  step.state = AuthStep::State::kFailure;
  step.error = std::move(why);
  step.client_sqlstate = pgwire::kInvalidPassword;
  step.client_error =
      absl::StrCat("password authentication failed for user \"", user, "\"");
  return step;
}

// Checks environment access only after the password proved the identity,
// so a stranger learns nothing about which environments a user may use.
AuthStep Success(const config::User& user, const AuthRequest& request,
                 const char* method) {
  if (!user.environments.empty() &&
      std::find(user.environments.begin(), user.environments.end(),
                request.environment) == user.environments.end()) {
    AuthStep step;
    step.state = AuthStep::State::kFailure;
    step.error = absl::PermissionDeniedError(absl::StrCat(
        "user ", user.name, " may not use environment ", request.environment));
    step.client_sqlstate = pgwire::kInvalidAuthorization;
    step.client_error = absl::StrCat("user \"", user.name,
                                     "\" is not allowed in environment \"",
                                     request.environment, "\"");
    return step;
  }
  AuthStep step;
  step.state = AuthStep::State::kSuccess;
  step.identity.set_user(user.name);
  for (const auto& g : user.groups) step.identity.add_groups(g);
  step.identity.set_kind(KindOf(user.kind));
  step.identity.set_auth_method(method);
  step.provider_identity = user.directory;
  return step;
}

class ScramExchange : public AuthExchange {
 public:
  ScramExchange(const config::User* user, const AuthRequest& request,
                const std::string& mock_secret)
      : user_(user),
        request_(request),
        server_(Verifier(user), request.user, mock_secret) {}

  AuthStep Start() override {
    AuthStep step;
    pgwire::WriteAuthenticationSasl(
        &step.reply, {std::string(auth::ScramServer::kMechanism)});
    return step;
  }

  AuthStep OnMessage(absl::string_view body) override {
    if (!got_first_) {
      got_first_ = true;
      auto initial = pgwire::ParseSaslInitialResponse(body);
      if (!initial.ok()) return Malformed(initial.status());
      if (initial->mechanism != auth::ScramServer::kMechanism) {
        return Malformed(absl::InvalidArgumentError(
            absl::StrCat("client selected SASL mechanism '",
                         absl::CHexEscape(initial->mechanism.substr(0, 64)),
                         "'; only SCRAM-SHA-256 is offered")));
      }
      if (!initial->has_data) {
        return Malformed(
            absl::InvalidArgumentError("SASL initial response has no data"));
      }
      auto server_first = server_.HandleClientFirst(initial->data);
      if (!server_first.ok()) return Malformed(server_first.status());
      AuthStep step;
      pgwire::WriteAuthenticationSaslContinue(&step.reply, *server_first);
      return step;
    }
    auto server_final = server_.HandleClientFinal(body);
    if (!server_final.ok()) {
      if (absl::IsPermissionDenied(server_final.status())) {
        return Failure(server_final.status(), request_.user);
      }
      return Malformed(server_final.status());
    }
    AuthStep step = Success(*user_, request_, "scram-sha-256");
    if (step.state == AuthStep::State::kSuccess) {
      pgwire::WriteAuthenticationSaslFinal(&step.reply, *server_final);
    }
    return step;
  }

 private:
  static std::optional<auth::ScramVerifier> Verifier(const config::User* user) {
    if (user == nullptr) return std::nullopt;
    auto parsed = auth::ParseScramVerifier(user->scram_verifier);
    if (!parsed.ok()) return std::nullopt;  // validated at config load.
    return *parsed;
  }

  AuthStep Malformed(absl::Status why) {
    AuthStep step;
    step.state = AuthStep::State::kFailure;
    step.client_sqlstate = pgwire::kProtocolViolation;
    step.client_error =
        absl::StrCat("malformed SCRAM message: ", why.message());
    step.error = std::move(why);
    return step;
  }

  const config::User* user_;
  AuthRequest request_;
  auth::ScramServer server_;
  bool got_first_ = false;
};

class CleartextExchange : public AuthExchange {
 public:
  CleartextExchange(const config::User* user, const AuthRequest& request,
                    const std::string& mock_secret)
      : user_(user), request_(request), mock_secret_(mock_secret) {}

  AuthStep Start() override {
    if (!request_.tls) {
      // The listener config requires TLS for this method; this is a guard.
      done_ = true;
      return Failure(absl::FailedPreconditionError(
                         "cleartext password over an unencrypted connection"),
                     request_.user);
    }
    AuthStep step;
    pgwire::WriteAuthenticationCleartextPassword(&step.reply);
    return step;
  }

  AuthStep OnMessage(absl::string_view body) override {
    // One password per exchange: whatever the verdict, the exchange is over.
    if (done_) {
      return Failure(absl::FailedPreconditionError("exchange already ended"),
                     request_.user);
    }
    done_ = true;
    auto password = pgwire::ParsePasswordMessage(body);
    if (!password.ok()) return Failure(password.status(), request_.user);
    std::optional<auth::ScramVerifier> verifier;
    if (user_ != nullptr) {
      auto parsed = auth::ParseScramVerifier(user_->scram_verifier);
      if (parsed.ok()) verifier = *parsed;
    }
    // Unknown users cost the same key derivation as known ones, so timing
    // does not tell which user names exist.
    const std::string salt =
        verifier
            ? verifier->salt
            : crypto::HmacSha256(mock_secret_, request_.user).substr(0, 16);
    const int iterations =
        verifier ? verifier->iterations : auth::kScramDefaultIterations;
    const auth::ScramVerifier candidate =
        auth::MakeScramVerifier(*password, salt, iterations);
    if (!verifier || !crypto::ConstantTimeEquals(candidate.stored_key,
                                                 verifier->stored_key)) {
      return Failure(absl::PermissionDeniedError(verifier ? "wrong password"
                                                          : "unknown user"),
                     request_.user);
    }
    return Success(*user_, request_, "password");
  }

 private:
  const config::User* user_;
  AuthRequest request_;
  std::string mock_secret_;
  bool done_ = false;
};

}  // namespace

LocalAuthenticator::LocalAuthenticator(const config::ProxyConfig* config,
                                       config::ClientAuthMethod method,
                                       std::string mock_secret)
    : config_(config), method_(method), mock_secret_(std::move(mock_secret)) {}

std::unique_ptr<AuthExchange> LocalAuthenticator::Begin(
    const AuthRequest& request) {
  const config::User* user = config_->FindUser(request.user);
  if (method_ == config::ClientAuthMethod::kPassword) {
    return std::make_unique<CleartextExchange>(user, request, mock_secret_);
  }
  return std::make_unique<ScramExchange>(user, request, mock_secret_);
}

}  // namespace warden::dataplane::session
