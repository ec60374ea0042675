#include "dataplane/session/frontend_relay.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/framing.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/pgwire/sqlstate.h"
#include "dataplane/session/splice.h"
#include "proto/warden/v1/session.pb.h"

namespace warden::dataplane::session {

using Action = FrontendRelay::Step::Action;

FrontendRelay::Read FrontendRelay::OnBytes(absl::string_view buf,
                                           const gate::Gate* gate,
                                           bool relaying, Output* out) {
  Read read;
  Splice splice(buf,
                [out](absl::string_view bytes) { out->ToUpstream(bytes); });
  while (!splice.done() && !session_->ended()) {
    if (relaying && !out->MayTake(splice.rest())) break;
    // The upstream gets the message, or what replaces it, in order with
    // the messages before it.
    Step step = OnMessage(splice.rest(), gate, relaying);
    switch (step.action) {
      case Step::Action::kNeedMore:
        break;
      case Step::Action::kRelay:
        if (step.replacement.has_value()) {
          splice.Replace(step.size, *step.replacement);
          if (session_->ended()) {  // the upstream broke
            read.end = Read::End::kEnded;
            return read;
          }
        } else {
          splice.Keep(step.size);
        }
        break;
      case Step::Action::kHold:
        // Nothing of a held message goes now, not even a substitute: it
        // is read again, from the start, when a stage resumes it.
        splice.SendKept();
        read.end = Read::End::kHeld;
        read.used = splice.taken();
        return read;
      case Step::Action::kViolation:
        read.end = Read::End::kViolation;
        read.message = std::move(step.message);
        return read;
      case Step::Action::kEnded:
        read.end = Read::End::kEnded;
        return read;
    }
    if (step.action == Step::Action::kNeedMore) break;
    if (step.terminate) {
      read.end = Read::End::kTerminate;
      break;
    }
  }
  splice.SendKept();
  read.used = splice.taken();
  return read;
}

FrontendRelay::Step FrontendRelay::OnMessage(absl::string_view buf,
                                             const gate::Gate* gate,
                                             bool relaying) {
  Step step;
  const pgwire::Frame frame = pgwire::NextMessage(buf, max_message_bytes_);
  if (frame.status == pgwire::FrameStatus::kNeedMore) return step;
  step.action = Action::kViolation;
  if (frame.status == pgwire::FrameStatus::kError) {
    step.message = std::string(frame.error.message());
    return step;
  }
  const absl::Status valid = pgwire::ValidateFrontend(frame.type, frame.body);
  if (!valid.ok()) {
    step.message = std::string(valid.message());
    return step;
  }
  const auto type = static_cast<pgwire::FrontendType>(frame.type);
  if ((type == pgwire::FrontendType::kQuery ||
       type == pgwire::FrontendType::kFunctionCall) &&
      correlator_->extended_since_sync()) {
    // After an error PostgreSQL skips everything up to the next Sync, a
    // Query too, and then sends no ReadyForQuery for it: which answer
    // belongs to which message would be a guess. No driver sends this
    // (libpq refuses it in pipeline mode).
    step.message = absl::StrCat(
        type == pgwire::FrontendType::kQuery ? "a Query" : "a FunctionCall",
        " message arrived inside an unfinished extended-query batch "
        "(Parse/Bind/Describe/Execute/Close without a Sync after them); "
        "Warden relays it only after a Sync");
    return step;
  }
  step.action = Action::kRelay;
  step.size = frame.size;
  // Portals PostgreSQL may hold as freed or half-made memory (see
  // correlator.h): Warden answers as PostgreSQL does for a portal that
  // does not exist (34000) instead of passing the message on.
  bool shielded = false;
  if (const auto portal = correlator_->UnsafePortal(frame.type, frame.body);
      portal.has_value()) {
    shielded = true;
    step.replacement = Shield(type, *portal);
    if (session_->ended()) {
      step.action = Action::kEnded;
      return step;
    }
  }
  stages::Intent intent;
  if (relaying && !chain_->empty()) {
    // The stages (policy, audit): relay the message, refuse it, or hold
    // it (it stays in the buffer; what came before goes now).
    stages::Execution& execution = session_->execution();
    execution.gate = gate;
    const stages::StageResult r =
        chain_->OnFrontend({frame.type, frame.body, shielded});
    if (session_->ended()) {  // e.g. a deactivated user
      step.action = Action::kEnded;
      return step;
    }
    if (r == stages::StageResult::kHold) {
      step.action = Action::kHold;
      return step;
    }
    if (!shielded && execution.refusal.has_value()) {
      std::string replacement;
      Substitute(frame.type, frame.body, std::move(execution.refusal->error),
                 &replacement, execution.refusal->parse);
      step.replacement = std::move(replacement);
      if (session_->ended()) {
        step.action = Action::kEnded;
        return step;
      }
    }
    intent = std::move(execution.intent);
  }
  correlator_->Relayed(frame.type, frame.body, std::move(intent),
                       session_->Now());
  if (type == pgwire::FrontendType::kTerminate) {
    step.terminate = true;
  } else if (type == pgwire::FrontendType::kPassword) {
    step.action = Action::kViolation;
    step.message = "unexpected authentication message after startup";
  }
  return step;
}

std::string FrontendRelay::Shield(pgwire::FrontendType type,
                                  const std::string& portal) {
  std::string poison;
  if (type == pgwire::FrontendType::kClose) {
    // (The policy stage expects its CloseComplete.)
    pgwire::WriteClose(&poison, 'P', "warden_no_such_portal");
    return poison;
  }
  std::string error;
  pgwire::WriteErrorResponse(
      &error, "ERROR", pgwire::kInvalidCursorName,
      absl::StrCat("portal \"", portal, "\" does not exist"),
      "Its Bind failed, or a simple Query came after it, or its Bind "
      "has not completed yet; Warden does not pass this message on "
      "(PostgreSQL 15 can crash on such a portal).",
      "Bind the portal again (in the same batch) before using it.", 0);
  const std::string name = QueueRefusal(std::move(error));
  if (type == pgwire::FrontendType::kExecute) {
    pgwire::WriteExecute(&poison, name);
  } else {
    pgwire::WriteDescribe(&poison, 'P', name);
  }
  return poison;
}

std::string FrontendRelay::QueueRefusal(std::string error) {
  CheckRefusalRoom();
  return refusals_->Queue(std::move(error),
                          correlator_->pipeline().syncs_sent + 1);
}

void FrontendRelay::Substitute(char type, absl::string_view body,
                               std::string error, std::string* replacement,
                               bool parse) {
  CheckRefusalRoom();
  refusals_->WriteSubstitute(type, body, std::move(error),
                             correlator_->pipeline().syncs_sent + 1,
                             replacement, parse);
}

void FrontendRelay::CheckRefusalRoom() {
  if (refusals_->size() >= kMaxRefusalsInFlight) {
    // Only a client that pipelines thousands of refused statements without
    // reading a single answer gets here; its errors would pile up in memory.
    session_->Fail(pgwire::kProgramLimitExceeded,
                   absl::StrCat("more than ", kMaxRefusalsInFlight,
                                " refused statements are waiting for their "
                                "errors; read the results of what you sent"),
                   warden::v1::SESSION_END_REASON_POLICY);
  }
}

}  // namespace warden::dataplane::session
