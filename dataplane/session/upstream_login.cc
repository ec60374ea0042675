#include "dataplane/session/upstream_login.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dataplane/auth/scram.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/sqlstate.h"

namespace warden::dataplane::session {
namespace {

using State = UpstreamLogin::Step::State;

const char* MethodName(config::UpstreamAuthMethod m) {
  switch (m) {
    case config::UpstreamAuthMethod::kScramSha256:
      return "scram-sha-256";
    case config::UpstreamAuthMethod::kMd5:
      return "md5";
    case config::UpstreamAuthMethod::kPassword:
      return "password";
    case config::UpstreamAuthMethod::kTrust:
      return "trust";
  }
  return "?";
}

UpstreamLogin::Step Failed(std::string sqlstate, std::string message) {
  UpstreamLogin::Step step;
  step.state = State::kFailed;
  step.sqlstate = std::move(sqlstate);
  step.message = std::move(message);
  return step;
}

}  // namespace

UpstreamLogin::UpstreamLogin(const config::Upstream& upstream,
                             std::string user, std::string password,
                             std::string database)
    : upstream_(upstream),
      user_(std::move(user)),
      password_(std::move(password)),
      database_(std::move(database)) {}

UpstreamLogin::~UpstreamLogin() = default;

UpstreamLogin::Step UpstreamLogin::Refuse(const std::string& why) const {
  return Failed(pgwire::kRejectedConnection,
                absl::StrCat("Warden could not log in to the upstream "
                             "database for \"",
                             database_, "\": ", why));
}

UpstreamLogin::Step UpstreamLogin::OnMessage(char type,
                                             absl::string_view body) {
  switch (type) {
    case 'R':
      break;
    case 'E': {
      auto error = pgwire::ParseErrorResponse(body);
      const std::string sqlstate =
          error.ok() ? std::string(error->Get('C')) : "";
      const std::string message =
          error.ok() ? std::string(error->Get('M')) : "malformed error";
      if (absl::StartsWith(sqlstate, "28")) {
        return Refuse("the upstream rejected the service credentials");
      }
      return Failed(sqlstate.size() == 5
                        ? sqlstate
                        : std::string(pgwire::kConnectionFailure),
                    absl::StrCat("upstream database: ", message));
    }
    case 'v':  // NegotiateProtocolVersion: we asked for plain 3.0.
    case 'N':  // NoticeResponse during startup: nothing to act on.
      return Step{};
    default:
      return Failed(pgwire::kConnectionFailure,
                    absl::StrCat("upstream sent ", pgwire::PrintableType(type),
                                 " during authentication"));
  }
  auto auth = pgwire::ParseAuthentication(body);
  if (!auth.ok()) {
    return Failed(pgwire::kConnectionFailure,
                  absl::StrCat("malformed authentication request from "
                               "upstream: ",
                               auth.status().message()));
  }
  const auto mismatch = [&](const char* asked) {
    return Refuse(absl::StrCat(
        "it asked for ", asked, " authentication but Warden is configured for ",
        MethodName(upstream_.auth),
        " (refusing, so the service password cannot be downgraded or "
        "harvested)"));
  };
  Step step;
  switch (auth->code) {
    case 0:  // AuthenticationOk.
      if (scram_ != nullptr && !scram_done_) {
        return Refuse("it skipped SCRAM's final server signature");
      }
      if (upstream_.auth == config::UpstreamAuthMethod::kScramSha256 &&
          !scram_done_) {
        // SCRAM is what proves the server knows the service password: a
        // server that lets Warden in without it may not be the database.
        return Refuse(
            "it accepted the login without SCRAM-SHA-256, so it never "
            "proved it is the database (configure auth: trust for a "
            "trust upstream)");
      }
      step.state = State::kDone;
      return step;
    case 3:
      if (upstream_.auth != config::UpstreamAuthMethod::kPassword) {
        return mismatch("cleartext password");
      }
      pgwire::WritePasswordMessage(&step.reply, password_);
      return step;
    case 5:
      if (upstream_.auth != config::UpstreamAuthMethod::kMd5) {
        return mismatch("md5");
      }
      if (auth->data.size() != 4) return Refuse("malformed md5 salt");
      pgwire::WritePasswordMessage(
          &step.reply,
          auth::Md5PasswordResponse(user_, password_, auth->data));
      return step;
    case 10: {
      if (upstream_.auth != config::UpstreamAuthMethod::kScramSha256) {
        return mismatch("SASL");
      }
      bool offered = false;
      for (absl::string_view rest = auth->data; !rest.empty();) {
        const size_t nul = rest.find('\0');
        const absl::string_view mech = rest.substr(0, nul);
        if (mech == auth::ScramServer::kMechanism) offered = true;
        if (nul == absl::string_view::npos) break;
        rest.remove_prefix(nul + 1);
      }
      if (!offered) return Refuse("it did not offer SCRAM-SHA-256");
      scram_ = std::make_unique<auth::ScramClient>(password_);
      pgwire::WriteSaslInitialResponse(&step.reply,
                                       auth::ScramServer::kMechanism,
                                       scram_->ClientFirstMessage());
      return step;
    }
    case 11: {
      if (scram_ == nullptr) return Refuse("unexpected SASLContinue");
      auto final_message = scram_->HandleServerFirst(auth->data);
      if (!final_message.ok()) {
        return Refuse(std::string(final_message.status().message()));
      }
      pgwire::WriteSaslResponse(&step.reply, *final_message);
      return step;
    }
    case 12: {
      if (scram_ == nullptr) return Refuse("unexpected SASLFinal");
      const absl::Status verified = scram_->VerifyServerFinal(auth->data);
      if (!verified.ok()) {
        return Refuse(absl::StrCat("the server's SCRAM signature is wrong: ",
                                   verified.message()));
      }
      scram_done_ = true;
      return step;
    }
    default:
      return Refuse(absl::StrCat(
          "it asked for unsupported authentication method ", auth->code));
  }
}

}  // namespace warden::dataplane::session
