#include "dataplane/session/shared_state.h"

#include <utility>

#include "dataplane/stages/policy_stage.h"

namespace warden::dataplane::session {

ClientLogin::Context SharedState::LoginContext(
    const config::Listener& listener) {
  ClientLogin::Context login;
  login.listener = &listener;
  login.environment = config->FindEnvironment(listener.environment);
  login.authenticator = authenticators.at(listener.name).get();
  if (const auto it = listener_tls.find(listener.name);
      it != listener_tls.end()) {
    login.tls = it->second.get();
  }
  login.login_failures = &login_failures;
  if (audit::AuditSink* sink = recorder) {
    login.spool_fill = [sink] { return sink->Fill(); };
  }
  login.recording = recorder != nullptr;
  login.may_record = &may_record;
  login.governed = governed;
  login.gate = [this] { return CurrentGate(); };
  login.config_user_names = &config_user_names;
  login.config_user_lookalikes = &config_user_lookalikes;
  return login;
}

stages::AuditStage* SharedState::BuildChain(
    std::unique_ptr<stages::DirectoryStage> directory,
    stages::StageCallbacks* session, stages::AuditTrail* trail,
    stages::Chain* chain) {
  const bool audit = recorder != nullptr;
  // Client to database: directory, policy, audit.
  if (directory != nullptr) chain->Add(std::move(directory));
  if (governed) {
    chain->Add(std::make_unique<stages::PolicyStage>(session, audit));
  }
  if (!audit) return nullptr;
  stages::AuditStageOptions options;
  options.results = audit_results;
  if (audit_sync != nullptr) {
    options.sync = audit_sync;
    options.sync_timeout_ms = audit_sync_timeout_ms;
  }
  options.results_lost = &audit_results_lost;
  auto stage = std::make_unique<stages::AuditStage>(session, trail, options);
  stages::AuditStage* const audit_stage = stage.get();
  chain->Add(std::move(stage));
  return audit_stage;
}

}  // namespace warden::dataplane::session
