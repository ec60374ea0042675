#include "dataplane/session/backend_relay.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "dataplane/pgwire/framing.h"
#include "dataplane/pgwire/sqlstate.h"
#include "dataplane/session/startup_params.h"

namespace warden::dataplane::session {
namespace {

using Action = BackendRelay::Step::Action;

BackendRelay::Step Failed(std::string sqlstate, std::string message,
                          warden::v1::SessionEndReason reason) {
  BackendRelay::Step step;
  step.action = Action::kFail;
  step.sqlstate = std::move(sqlstate);
  step.message = std::move(message);
  step.reason = reason;
  return step;
}

}  // namespace

size_t BackendRelay::OnBytes(absl::string_view buf, size_t max_message_bytes,
                             absl::Time now, Output* out) {
  Splice splice(buf, [out](absl::string_view bytes) { out->ToClient(bytes); });
  while (!splice.done() && !out->ended()) {
    const pgwire::Frame frame =
        pgwire::NextMessage(splice.rest(), max_message_bytes);
    if (frame.status == pgwire::FrameStatus::kNeedMore) break;
    const absl::Status valid =
        frame.status == pgwire::FrameStatus::kError
            ? frame.error
            : pgwire::ValidateBackend(frame.type, frame.body);
    if (!valid.ok()) {
      out->Fail(pgwire::kConnectionFailure,
                absl::StrCat("invalid message from the upstream database: ",
                             valid.message()),
                warden::v1::SESSION_END_REASON_UPSTREAM);
      return 0;
    }
    if (const Step screened = Screen(frame.type, frame.body);
        screened.action == Action::kFail) {
      out->Fail(screened.sqlstate, screened.message, screened.reason);
      return 0;
    }
    if (out->logging_in()) {
      splice.Drop(frame.size);
      if (!out->OnLoginMessage(frame.type, frame.body)) return 0;
      continue;
    }
    // The client gets the message, or what replaces it, in order with the
    // messages before it.
    const Step step = OnMessage(frame.type, frame.body, now);
    switch (step.action) {
      case Action::kRelay:
        splice.Keep(frame.size);
        break;
      case Action::kReplace:
        splice.Replace(frame.size, step.replacement);
        break;
      case Action::kBackendKey:
        splice.SendKept();
        if (!out->OnBackendKey(step.key)) return 0;
        splice.Drop(frame.size);
        break;
      case Action::kFail:
        out->Fail(step.sqlstate, step.message, step.reason);
        return 0;
    }
  }
  splice.SendKept();
  return splice.taken();
}

BackendRelay::Step BackendRelay::Screen(char type,
                                        absl::string_view body) const {
  if (!governed_ ||
      type != static_cast<char>(pgwire::BackendType::kParameterStatus)) {
    return Step();
  }
  // However it happened (a function's SET, ALTER ROLE ... SET), a server
  // that now reads statements differently from Warden must not get
  // another one from this session.
  const auto status = pgwire::ParseParameterStatus(body);
  const std::string why =
      status.ok() ? ReportedLexingState(status->name, status->value) : "";
  if (why.empty()) return Step();
  return Failed(pgwire::kInsufficientPrivilege,
                absl::StrCat("Warden: the database now reads statements "
                             "differently from Warden (",
                             why, "); the session is closed"),
                warden::v1::SESSION_END_REASON_POLICY);
}

BackendRelay::Step BackendRelay::OnMessage(char type, absl::string_view body,
                                           absl::Time now) {
  if (ready_) correlator_->Forwarded(type, body, now);
  switch (static_cast<pgwire::BackendType>(type)) {
    case pgwire::BackendType::kBackendKeyData: {
      auto key = pgwire::ParseBackendKeyData(body);
      if (ready_ || !key.ok()) {
        return Failed(pgwire::kConnectionFailure,
                      "unexpected BackendKeyData from the upstream database",
                      warden::v1::SESSION_END_REASON_UPSTREAM);
      }
      Step step;
      step.action = Action::kBackendKey;
      step.key = *key;
      return step;
    }
    case pgwire::BackendType::kReadyForQuery:
      if (ready_) {
        correlator_->Ready(body == "I");
        if (!refusals_->empty()) {
          refusals_->DropDone(correlator_->pipeline().syncs_done);
        }
        ToStages(type, body);
      }
      ready_ = true;
      return Step();
    case pgwire::BackendType::kErrorResponse: {
      if (ready_) correlator_->Failed();
      // Parsed once for the refusals and severity.
      const auto error = pgwire::ParseErrorResponse(body);
      if (!refusals_->empty() && error.ok()) {
        if (auto taken = refusals_->Take(*error); taken.has_value()) {
          if (ready_) ToStages(type, body, true, taken->parse);
          Step step;
          step.action = Action::kReplace;
          step.replacement = std::move(taken->error);
          return step;
        }
      }
      if (ready_) ToStages(type, body);
      if (error.ok()) {
        const absl::string_view severity =
            error->Get('V').empty() ? error->Get('S') : error->Get('V');
        if (severity == "FATAL" || severity == "PANIC") fatal_ = true;
      }
      return Step();
    }
    case pgwire::BackendType::kCommandComplete:
    case pgwire::BackendType::kPortalSuspended:
    case pgwire::BackendType::kEmptyQueryResponse:
      correlator_->Answered();
      ToStages(type, body);
      return Step();
    case pgwire::BackendType::kDataRow:
    case pgwire::BackendType::kParseComplete:
    case pgwire::BackendType::kBindComplete:
    case pgwire::BackendType::kCloseComplete:
    case pgwire::BackendType::kRowDescription:
    case pgwire::BackendType::kNoData:
      // (Each answers its message: the audit stage pairs errors with the
      // message they answer.)
      ToStages(type, body);
      return Step();
    case pgwire::BackendType::kAuthentication:
      return Failed(
          pgwire::kConnectionFailure,
          "unexpected authentication request from the upstream database",
          warden::v1::SESSION_END_REASON_UPSTREAM);
    default:
      return Step();
  }
}

void BackendRelay::ToStages(char type, absl::string_view body,
                            bool refusal_taken, bool refused_parse) {
  if (chain_->empty()) return;
  chain_->OnBackend({type, body, refusal_taken, refused_parse});
}

}  // namespace warden::dataplane::session
