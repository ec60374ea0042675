#include "dataplane/session/client_login.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/framing.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/sqlstate.h"
#include "dataplane/session/startup_params.h"
#include "policy/engine/engine.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::session {
namespace {

// A listener's method as the audit trail names it.
const char* MethodName(config::ClientAuthMethod method) {
  switch (method) {
    case config::ClientAuthMethod::kPassword:
      return "password";
    case config::ClientAuthMethod::kOidc:
      return "oidc";
    case config::ClientAuthMethod::kCert:
      return "cert";
    default:
      return "scram-sha-256";
  }
}

}  // namespace

ClientLogin::ClientLogin(Context context, Callbacks* callbacks)
    : context_(std::move(context)), callbacks_(callbacks) {}

ClientLogin::~ClientLogin() = default;

size_t ClientLogin::OnClientBytes(absl::string_view buf) {
  switch (state_) {
    case State::kStartup:
      return OnStartupPacket(buf);
    case State::kAuth:
      return OnAuthMessages(buf);
    case State::kThrottled:
    case State::kDone:
      return 0;
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Startup packets.

size_t ClientLogin::OnStartupPacket(absl::string_view buf) {
  const pgwire::Frame frame = pgwire::NextStartupPacket(buf);
  if (frame.status == pgwire::FrameStatus::kNeedMore) return 0;
  if (frame.status == pgwire::FrameStatus::kError) {
    FailProtocol(frame.error.message());
    return 0;
  }
  auto startup = pgwire::ParseStartup(frame.body);
  if (!startup.ok()) {
    FailProtocol(startup.status().message());
    return 0;
  }
  switch (startup->kind) {
    case pgwire::StartupKind::kSslRequest:
      if (tls_negotiated_) {
        FailProtocol("SSLRequest received twice");
        return 0;
      }
      tls_negotiated_ = true;
      if (context_.tls == nullptr) {
        callbacks_->SendToClient("N");
        return frame.size;
      }
      if (buf.size() > frame.size) {
        // Bytes sent before the TLS handshake would be trusted as if they
        // had been encrypted (CVE-2021-23214): refuse.
        FailProtocol("unencrypted data received after SSLRequest");
        return 0;
      }
      callbacks_->SendToClient("S");
      callbacks_->StartClientTls(context_.tls);
      return frame.size;
    case pgwire::StartupKind::kGssEncRequest:
      callbacks_->SendToClient("N");
      return frame.size;
    case pgwire::StartupKind::kCancelRequest:
      callbacks_->OnCancelRequest(startup->cancel_pid, startup->cancel_secret);
      return frame.size;
    case pgwire::StartupKind::kStartup:
      HandleStartup(*startup);
      return frame.size;
  }
  return frame.size;
}

void ClientLogin::HandleStartup(const pgwire::StartupMessage& startup) {
  const bool tls = callbacks_->ClientTls();
  const config::Listener& listener = *context_.listener;
  if (listener.tls_mode == config::ClientTlsMode::kRequire && !tls) {
    return Fail(pgwire::kInvalidAuthorization,
                "Warden requires TLS on this listener; connect with "
                "sslmode=require",
                warden::v1::SESSION_END_REASON_POLICY);
  }
  if (context_.login_failures->Refuse(context_.peer_host, absl::Now())) {
    // Counted in the address's summary event, not recorded one by one.
    spdlog::warn("session {}: refused: too many failed logins from {}",
                 context_.peer_address, context_.peer_host);
    return Fail(pgwire::kTooManyConnections,
                "Warden: too many failed logins from this address; try "
                "again later",
                warden::v1::SESSION_END_REASON_POLICY);
  }
  if (context_.recording && context_.may_record != nullptr &&
      *context_.may_record) {
    if (absl::Status s = (*context_.may_record)(listener.environment);
        !s.ok()) {
      spdlog::error("session {}: refused: {}", context_.peer_address,
                    std::string(s.message()));
      return Fail(pgwire::kRejectedConnection,
                  absl::StrCat("Warden: ", s.message()),
                  warden::v1::SESSION_END_REASON_POLICY);
    }
  }
  user_ = std::string(startup.Get("user"));
  admission_.database_name = std::string(startup.Get("database"));
  if (admission_.database_name.empty()) admission_.database_name = user_;
  std::vector<std::string> unrecognized;
  for (const auto& [name, value] : startup.parameters) {
    if (name == "user" || name == "database") continue;
    if (absl::StartsWith(name, "_pq_.")) {
      unrecognized.emplace_back(name);
      continue;
    }
    if (name == "replication") {
      const std::string v = absl::AsciiStrToLower(value);
      if (v != "false" && v != "off" && v != "no" && v != "0") {
        return Fail(pgwire::kFeatureNotSupported,
                    "replication connections are not supported through Warden",
                    warden::v1::SESSION_END_REASON_POLICY);
      }
      continue;
    }
    if (context_.governed) {
      // Judged as the SETs they are, before anything reaches the database.
      if (absl::Status s = JudgeStartupParameter(name, value); !s.ok()) {
        return Fail(pgwire::kRejectedConnection,
                    absl::StrCat("Warden: ", s.message()),
                    warden::v1::SESSION_END_REASON_POLICY);
      }
    }
    admission_.startup_params.emplace_back(std::string(name),
                                           std::string(value));
  }
  const int32_t minor = startup.protocol_version & 0xffff;
  if (minor > 0 || !unrecognized.empty()) {
    std::string out;
    pgwire::WriteNegotiateProtocolVersion(&out, 0, unrecognized);
    callbacks_->SendToClient(out);
  }
  AuthRequest request;
  request.user = user_;
  request.database = admission_.database_name;
  request.environment = listener.environment;
  request.tls = tls;
  if (listener.auth == config::ClientAuthMethod::kCert) {
    request.peer_certificate_pem = callbacks_->ClientCertificatePem();
  }
  auth_ = context_.authenticator->Begin(request);
  state_ = State::kAuth;
  HandleAuthStep(auth_->Start());
}

// ---------------------------------------------------------------------------
// Authentication.

size_t ClientLogin::OnAuthMessages(absl::string_view buf) {
  size_t pos = 0;
  while (pos < buf.size() && !callbacks_->ended()) {
    const pgwire::Frame frame =
        pgwire::NextMessage(buf.substr(pos), kMaxAuthMessageSize);
    if (frame.status == pgwire::FrameStatus::kNeedMore) break;
    if (frame.status == pgwire::FrameStatus::kError) {
      FailProtocol(frame.error.message());
      return 0;
    }
    if (frame.type != static_cast<char>(pgwire::FrontendType::kPassword)) {
      FailProtocol(absl::StrCat("expected an authentication response, got ",
                                pgwire::PrintableType(frame.type)));
      return 0;
    }
    pos += frame.size;
    HandleAuthStep(auth_->OnMessage(frame.body));
    if (state_ != State::kAuth) return pos;  // the rest waits for the relay.
  }
  return pos;
}

void ClientLogin::HandleAuthStep(AuthStep step) {
  const config::Listener& listener = *context_.listener;
  switch (step.state) {
    case AuthStep::State::kContinue:
      callbacks_->SendToClient(step.reply);
      return;
    case AuthStep::State::kFailure: {
      spdlog::info("session {}: authentication failed for user '{}': {}",
                   context_.peer_address, user_, step.error.ToString());
      warden::v1::AuditEvent event =
          callbacks_->NewEvent(warden::v1::AUDIT_EVENT_KIND_AUTHENTICATION);
      auto* a = event.mutable_authentication();
      a->set_success(false);
      a->set_method(!step.method.empty() ? step.method
                                         : MethodName(listener.auth));
      a->set_reason(std::string(step.error.message()));
      a->set_claimed_user(ClaimedUser());
      // Past the first failures of this address in its window, or while
      // the spool is backlogged, counted in a summary event instead
      // (LoginFailures; red team: 3 KB user names from 20 addresses filled
      // the spool in 2 s).
      const bool backlogged = context_.spool_fill && context_.spool_fill() > 0.5;
      if (context_.login_failures->Failed(context_.peer_host, user_,
                                          absl::Now(), listener.environment,
                                          /*may_record_each=*/!backlogged)) {
        callbacks_->Audit(std::move(event));
      }
      return Fail(step.client_sqlstate, step.client_error,
                  warden::v1::SESSION_END_REASON_POLICY);
    }
    case AuthStep::State::kSuccess:
      break;
  }
  warden::v1::Identity& identity = *context_.identity;
  policy::engine::Subject& subject = *context_.subject;
  identity = std::move(step.identity);
  if (context_.governed) {
    admission_.directory = std::make_unique<stages::DirectoryStage>(
        context_.stage_callbacks, &identity, &subject,
        stages::DirectoryStage::Login{step.provider_identity,
                                      step.credential_issued});
  }
  auth_.reset();
  // A name that passes on screen for another person's ("\u0430lice" with a
  // Cyrillic a) would dodge the rules written for that person's name and
  // mislead whoever reads the audit trail: refused however it was proven.
  if (absl::Status s = CheckNameIsDistinct(identity.user()); !s.ok()) {
    return RefuseIdentity(absl::StrCat("the user name ", s.message()));
  }
  // Nor a name that looks like another known person's without being it
  // ("b0b" next to "bob", a whole-script Cyrillic look-alike): known are
  // the directory's names and the config's users.
  if (const std::string like = LookAlikeOfKnownName(identity.user());
      !like.empty()) {
    return RefuseIdentity(absl::StrCat(
        "the user name looks like ", like,
        ", another user known to Warden (Unicode confusables, UTS #39), "
        "and would pass for that person in policies and the audit trail"));
  }
  // From here on the session spends its identity's audit budget, shared
  // with the identity's other sessions (red team pass 7: one client filled
  // the spool with a new session per statement, each on a fresh budget).
  callbacks_->OnIdentityProven();
  if (const std::optional<absl::Duration> wait = callbacks_->LoginAuditWait()) {
    // The spool is backlogged and this identity spent its audit budget:
    // its login records nothing until the budget covers it (red team: one
    // identity's login loop filled the spool's last tenth in 3 s). The
    // startup timeout bounds the wait.
    spdlog::info("session {}: login of {} waits {} ms for its audit budget",
                 context_.peer_address, identity.user(),
                 absl::ToInt64Milliseconds(*wait));
    state_ = State::kThrottled;
    held_reply_ = std::move(step.reply);
    callbacks_->ResumeLoginAfter(*wait);
    return;
  }
  Admit(std::move(step.reply));
}

void ClientLogin::ResumeAdmission() {
  if (state_ != State::kThrottled) return;
  if (const std::optional<absl::Duration> wait = callbacks_->LoginAuditWait()) {
    callbacks_->ResumeLoginAfter(*wait);
    return;
  }
  state_ = State::kAuth;
  Admit(std::move(held_reply_));
}

void ClientLogin::Admit(std::string reply) {
  warden::v1::Identity& identity = *context_.identity;
  policy::engine::Subject& subject = *context_.subject;
  // One AUTHENTICATION event per login, recorded once its outcome is
  // known: the credentials held, but the directory, the role mapping, the
  // database or a missing bundle may still refuse it (a success followed
  // by a failure read as a deactivated user logging in; red team).
  if (context_.governed && context_.gate() == nullptr) {
    return RefuseLogin(pgwire::kCannotConnectNow,
                       "this Warden proxy has no policy bundle yet (waiting "
                       "for the control plane); no statement can be judged",
                       "no policy bundle yet");
  }
  if (context_.governed || context_.recording) {
    subject.user = identity.user();
    subject.groups.assign(identity.groups().begin(), identity.groups().end());
    switch (identity.kind()) {
      case warden::v1::IDENTITY_KIND_AGENT:
        subject.kind = "agent";
        break;
      case warden::v1::IDENTITY_KIND_SERVICE:
        subject.kind = "service";
        break;
      default:
        subject.kind = "human";
        break;
    }
    auto token = crypto::RandomBytes(8);
    if (!token.ok()) {
      return Fail(pgwire::kInternalError, "cannot draw random bytes",
                  warden::v1::SESSION_END_REASON_INTERNAL);
    }
    admission_.refusal_token = crypto::HexEncode(*token);
  }
  callbacks_->SendToClient(reply);
  const config::Environment& environment = *context_.environment;
  const std::string& database_name = admission_.database_name;
  admission_.database = environment.FindDatabase(database_name);
  if (admission_.database == nullptr) {
    const std::string why = absl::StrCat("database \"", database_name,
                                         "\" does not exist in environment \"",
                                         environment.name, "\"");
    return RefuseLogin(pgwire::kInvalidCatalogName, why, why);
  }
  // The database role: the service role, or the one the bundle's identity
  // mappings give this identity here (with credentials only this proxy has).
  const config::Upstream& upstream = admission_.database->upstream;
  admission_.upstream_user = upstream.user;
  admission_.upstream_password = upstream.password;
  if (context_.governed) {
    const std::shared_ptr<const gate::Gate> gate = context_.gate();
    // The directory (SCIM) first: a deactivated user goes no further, and
    // its groups count for the role mapping.
    if (!admission_.directory->Apply(*gate)) {
      return RefuseIdentity(admission_.directory->Reason());
    }
    const policy::engine::RoleDecision role = policy::engine::MapRole(
        gate->bundle(), subject, environment.name, database_name);
    std::string refusal;
    if (role.mapped && role.role.empty()) {
      refusal = role.reason;
    } else if (role.mapped && role.role != upstream.user) {
      const auto it = upstream.roles.find(role.role);
      if (it == upstream.roles.end()) {
        refusal = absl::StrCat(
            "identity mapping ", role.mapping, " (", role.source,
            ") gives database role ", role.role,
            ", for which this proxy has no credentials (upstream.roles)");
        spdlog::error("session {}: {}", context_.peer_address, refusal);
      } else {
        admission_.upstream_user = role.role;
        admission_.upstream_password = it->second;
      }
    }
    if (!refusal.empty()) return RefuseIdentity(refusal);
  }
  if (!callbacks_->Audit(LoginEvent(true, ""))) {
    return Fail(pgwire::kInsufficientResources,
                "Warden cannot record this session in the audit trail "
                "(the local spool is full or failing); try again later",
                warden::v1::SESSION_END_REASON_INTERNAL);
  }
  warden::v1::AuditEvent event =
      callbacks_->NewEvent(warden::v1::AUDIT_EVENT_KIND_SESSION_START);
  auto* start = event.mutable_session_start();
  start->set_client_address(context_.peer_address);
  start->set_database(database_name);
  start->set_upstream_role(admission_.upstream_user);
  start->set_client_tls(tls_negotiated_);
  for (const auto& [k, v] : admission_.startup_params) {
    if (k == "application_name") start->set_application_name(v);
  }
  if (!callbacks_->Audit(std::move(event))) {
    return Fail(pgwire::kInsufficientResources,
                "Warden cannot record this session in the audit trail "
                "(the local spool is full or failing); try again later",
                warden::v1::SESSION_END_REASON_INTERNAL);
  }
  state_ = State::kDone;
  callbacks_->OnLoggedIn(std::move(admission_));
}

// ---------------------------------------------------------------------------
// Refusals.

std::string ClientLogin::LookAlikeOfKnownName(absl::string_view user) const {
  const std::shared_ptr<const gate::Gate> gate =
      context_.governed ? context_.gate() : nullptr;
  if (context_.config_user_names->contains(FoldName(user))) {
    return "";  // a configured user is their own person
  }
  // A directory name is checked against the config's users too: the
  // identity provider does not know them, so SCIM let "AIice" in next to
  // a configured "alice" (red team pass 10). Against the directory only
  // when it is not one of its names (Find: a known name is itself).
  std::string like = context_.config_user_lookalikes->Find(user);
  if (like.empty() && gate != nullptr) like = gate->DirectoryLookAlike(user);
  return like;
}

void ClientLogin::RefuseIdentity(const std::string& reason) {
  RefuseLogin(pgwire::kInvalidAuthorization, absl::StrCat("Warden: ", reason),
              reason);
}

void ClientLogin::RefuseLogin(const char* sqlstate, const std::string& message,
                              const std::string& reason) {
  callbacks_->Audit(LoginEvent(false, reason));
  Fail(sqlstate, message, warden::v1::SESSION_END_REASON_POLICY);
}

warden::v1::AuditEvent ClientLogin::LoginEvent(bool success,
                                               const std::string& reason) {
  warden::v1::AuditEvent event =
      callbacks_->NewEvent(warden::v1::AUDIT_EVENT_KIND_AUTHENTICATION);
  auto* a = event.mutable_authentication();
  a->set_success(success);
  a->set_method(context_.identity->auth_method());
  if (!reason.empty()) a->set_reason(reason);
  a->set_claimed_user(ClaimedUser());
  return event;
}

std::string ClientLogin::ClaimedUser() const {
  // PostgreSQL reads 63 bytes of a name; what a client claims beyond a
  // little more is not worth its room in the trail.
  constexpr size_t kMaxClaimedUser = 256;
  if (user_.size() <= kMaxClaimedUser) return user_;
  return absl::StrCat(user_.substr(0, kMaxClaimedUser), "... (",
                      user_.size(), " bytes)");
}

void ClientLogin::FailProtocol(absl::string_view message) {
  spdlog::info("session {}: protocol violation: {}", context_.peer_address,
               std::string(message));
  Fail(pgwire::kProtocolViolation, message,
       warden::v1::SESSION_END_REASON_POLICY);
}

void ClientLogin::Fail(absl::string_view sqlstate, absl::string_view message,
                       warden::v1::SessionEndReason reason) {
  state_ = State::kDone;
  callbacks_->Fail(sqlstate, message, reason);
}

}  // namespace warden::dataplane::session
