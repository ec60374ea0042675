// FrontendRelay: what each message from the client means to the session
// once the relay runs, with no I/O. The client-side twin of BackendRelay:
// the session hands it the unread bytes, it frames and validates the
// first message, runs it through the stages and keeps the books, and says
// what the session does with it:
//
// - an incomplete message waits for more bytes (kNeedMore); a malformed
//   one, a Query or FunctionCall inside an unfinished extended-query batch
//   or a password message after startup is a protocol violation
//   (kViolation: the session fails closed);
// - a message about a portal PostgreSQL may hold as freed memory
//   (Correlator::UnsafePortal) is shielded: a poison goes in its place,
//   its refusal (34000) queued, and the stages see it as shielded;
// - the stages (policy, audit) relay it (kRelay), refuse it (a substitute
//   from Refusals goes in its place, `replacement`) or hold it (kHold: it
//   stays in the client's buffer, the session stops reading the client
//   until a stage resumes it);
// - a stage, or too many refusals waiting for their errors, may end the
//   session (kEnded: the session stops at once);
// - Terminate is relayed, then the session closes (`terminate`).
//
// It asks the session for nothing but what the stages already may
// (stages::StageCallbacks: the execution, Fail, ended()).
//
// Not thread-safe: one per session, on its loop thread.
#ifndef WARDEN_DATAPLANE_SESSION_FRONTEND_RELAY_H_
#define WARDEN_DATAPLANE_SESSION_FRONTEND_RELAY_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/gate/gate.h"
#include "dataplane/session/correlator.h"
#include "dataplane/session/refusals.h"
#include "dataplane/stages/chain.h"
#include "dataplane/stages/stage.h"

namespace warden::dataplane::session {

// Refused messages whose errors may wait for PostgreSQL's answers at once
// in one session; past it the session ends (a client pipelining thousands
// of refused statements without reading an answer).
inline constexpr size_t kMaxRefusalsInFlight = 10000;

class FrontendRelay {
 public:
  // `correlator`, `refusals` and `chain` are the session's (the backend
  // side of the relay uses them too); `session` is the session as the
  // stages see it. All outlive this. `max_message_bytes`: the largest
  // client message accepted (proxy.max_message_bytes).
  FrontendRelay(Correlator* correlator, Refusals* refusals,
                stages::Chain* chain, stages::StageCallbacks* session,
                size_t max_message_bytes)
      : correlator_(correlator),
        refusals_(refusals),
        chain_(chain),
        session_(session),
        max_message_bytes_(max_message_bytes) {}

  struct Step {
    enum class Action {
      kNeedMore,   // the message is incomplete: wait for more bytes.
      kRelay,      // pass the message's `size` bytes on (or `replacement`).
      kHold,       // a stage holds the message: it stays unread.
      kViolation,  // a protocol violation: fail the session (`message`).
      kEnded,      // the session ended while the message was judged.
    };
    Action action = Action::kNeedMore;
    // The message's length on the wire (kRelay, kHold, kEnded).
    size_t size = 0;
    // What goes upstream in place of the message (a shield's poison or a
    // refusal's substitute), before the session acts on `action`.
    std::optional<std::string> replacement;
    // Terminate: after it (relayed), both sides close.
    bool terminate = false;
    std::string message;  // kViolation: why.
  };

  // What the session does with the client's messages (OnBytes).
  class Output {
   public:
    virtual ~Output() = default;
    // Bytes for the database, in order.
    virtual void ToUpstream(absl::string_view bytes) = 0;
    // Whether the next message may be taken now; `next` is the unread
    // bytes from it on (its header may be all there is). False leaves it
    // unread (the session's audit budget).
    virtual bool MayTake(absl::string_view next) = 0;
  };
  // How a read of the client's bytes ended (OnBytes).
  struct Read {
    enum class End {
      kMore,       // all taken, or the rest waits for more bytes.
      kHeld,       // a stage holds the message at `used`: it stays unread.
      kTerminate,  // Terminate was relayed: both sides close.
      kViolation,  // a protocol violation (`message`): fail the session.
      kEnded,      // the session ended while a message was judged.
    };
    End end = End::kMore;
    size_t used = 0;
    std::string message;
  };
  // The client's bytes from a message boundary: each message through
  // OnMessage, what goes upstream to `out`, in order. Stops at an
  // incomplete message, a message `out` may not take yet, a held one,
  // Terminate, a violation or the session's end.
  //
  // Example: a Query the policy refuses, then half a Query: ToUpstream
  // gets the poison in place of the first, and its length is `used`.
  Read OnBytes(absl::string_view buf, const gate::Gate* gate, bool relaying,
               Output* out);

  // The first message of `buf` (bytes the client sent, from a message
  // boundary). `gate`: the policy snapshot of this batch (null: none).
  // `relaying`: the session is in its relay phase (the stages run).
  //
  // Example: with a policy stage that refuses it, OnMessage of a Query
  // returns kRelay with `replacement` a poison Query whose refusal is
  // queued for the next batch.
  Step OnMessage(absl::string_view buf, const gate::Gate* gate, bool relaying);

 private:
  // A refusal queued for the batch the next Sync ends; returns the name
  // of the poison that stands for it. Fails the session past
  // kMaxRefusalsInFlight.
  std::string QueueRefusal(std::string error);
  // Writes the substitute of refused message `type` to `replacement`, its
  // refusal queued as QueueRefusal does. `parse`: it stands for a Parse.
  void Substitute(char type, absl::string_view body, std::string error,
                  std::string* replacement, bool parse);
  void CheckRefusalRoom();
  // The poison for a shielded message about `portal`.
  std::string Shield(pgwire::FrontendType type, const std::string& portal);

  Correlator* const correlator_;
  Refusals* const refusals_;
  stages::Chain* const chain_;
  stages::StageCallbacks* const session_;
  const size_t max_message_bytes_;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_FRONTEND_RELAY_H_
