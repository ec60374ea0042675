// BackendRelay: what each message from the database means to the session,
// with no I/O. OnBytes frames and validates the bytes the session read
// from the database, hands the messages of Warden's own login to it, and
// passes the rest on to the client (Output), each as it is, in place of
// something else, or not at all when it ends the session:
//
// - ParameterStatus (governed sessions, Warden's login included, Screen):
//   a setting with which PostgreSQL reads statements differently from
//   Warden (standard_conforming_strings off, a client_encoding Warden does
//   not lex) ends the session, however it was set.
// - ReadyForQuery: the first one ends the database's startup (ready(): the
//   session starts reading the client); each later one ends a batch for
//   the correlator, and drops the refusals whose poisons PostgreSQL
//   skipped.
// - ErrorResponse: one about a substitute Warden relayed in place of a
//   refused message is replaced by that refusal (Refusals::Take); a FATAL
//   or PANIC one means the database told the client why it ends
//   (fatal()).
// - CommandComplete, PortalSuspended and EmptyQueryResponse answer an
//   execution (Correlator).
// - BackendKeyData, once, before the first ReadyForQuery: the backend's
//   cancel key, which the client never sees (the session hands it its
//   own). Another one, or an authentication request, ends the session.
//
// The stages see each answer before the client does (ReadyForQuery and
// ErrorResponse only after the first ReadyForQuery), last stage first.
//
// Not thread-safe: one per session, on its loop thread.
#ifndef WARDEN_DATAPLANE_SESSION_BACKEND_RELAY_H_
#define WARDEN_DATAPLANE_SESSION_BACKEND_RELAY_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "dataplane/pgwire/messages.h"
#include "dataplane/session/splice.h"
#include "dataplane/session/correlator.h"
#include "dataplane/session/refusals.h"
#include "dataplane/stages/chain.h"
#include "proto/warden/v1/session.pb.h"

namespace warden::dataplane::session {

class BackendRelay {
 public:
  // `correlator`, `refusals` and `chain` are the session's (the client
  // side of the relay uses them too) and outlive this. `governed`: a
  // policy is configured.
  BackendRelay(bool governed, Correlator* correlator, Refusals* refusals,
               stages::Chain* chain)
      : governed_(governed),
        correlator_(correlator),
        refusals_(refusals),
        chain_(chain) {}

  struct Step {
    enum class Action {
      kRelay,       // pass the message on to the client.
      kReplace,     // send `replacement` to the client instead.
      kBackendKey,  // the backend's cancel key `key`: the client gets
                    // the session's own instead.
      kFail,        // end the session (FATAL `sqlstate` `message`).
    };
    Action action = Action::kRelay;
    std::string replacement;
    pgwire::BackendKeyData key{0, 0};
    std::string sqlstate;
    std::string message;
    warden::v1::SessionEndReason reason =
        warden::v1::SESSION_END_REASON_UNSPECIFIED;
  };

  // What the session does with the database's messages (OnBytes).
  class Output {
   public:
    virtual ~Output() = default;
    // Bytes for the client, in order.
    virtual void ToClient(absl::string_view bytes) = 0;
    // Warden is still logging in to the database: the message is its
    // login's, not the client's (OnLoginMessage; false: the session
    // failed).
    virtual bool logging_in() const = 0;
    virtual bool OnLoginMessage(char type, absl::string_view body) = 0;
    // The backend's cancel key: the client gets the session's own, sent
    // with ToClient (false: the session failed).
    virtual bool OnBackendKey(const pgwire::BackendKeyData& key) = 0;
    virtual void Fail(absl::string_view sqlstate, absl::string_view message,
                      warden::v1::SessionEndReason reason) = 0;
    virtual bool ended() const = 0;
  };

  // The database's bytes from a message boundary: frames, validates and
  // screens each message (Screen), then gives it to Warden's login or to
  // OnMessage and the client. Returns how many bytes were used: up to an
  // incomplete message, or 0 when the session failed (an invalid or
  // oversized message, over `max_message_bytes`, fails it: the stream is
  // out of step).
  //
  // Example: "Z" (ReadyForQuery) then half a DataRow: ToClient gets the
  // ReadyForQuery, and its length is returned.
  // `now`: when the bytes were read (for the executions' durations).
  size_t OnBytes(absl::string_view buf, size_t max_message_bytes,
                 absl::Time now, Output* out);

  // Any validated message from the database, Warden's login included:
  // kFail when it reports a setting under which PostgreSQL reads
  // statements differently from Warden (governed sessions); kRelay
  // otherwise.
  Step Screen(char type, absl::string_view body) const;

  // A validated message of the relay (after Warden's login to the
  // database), screened: kRelay, kReplace, kBackendKey or kFail.
  //
  // Example: with a refusal queued whose poison PostgreSQL answered with
  // its error, OnMessage('E', that error) returns kReplace with the
  // refusal's ErrorResponse; the stages saw the message with
  // refusal_taken set.
  // `now`: when it was read. Every message after the first ReadyForQuery
  // is paired with its execution (Correlator::Forwarded) before the
  // stages see it.
  Step OnMessage(char type, absl::string_view body, absl::Time now);
  Step OnMessage(char type, absl::string_view body) {
    return OnMessage(type, body, absl::Now());
  }

  // The first ReadyForQuery has arrived: the database is ready and the
  // client is read from now on.
  bool ready() const { return ready_; }
  // The database sent a FATAL (or PANIC) error: the client knows why the
  // session ends when the database closes the connection.
  bool fatal() const { return fatal_; }

 private:
  // The stages see the message (when there are any).
  void ToStages(char type, absl::string_view body, bool refusal_taken = false,
                bool refused_parse = false);

  const bool governed_;
  Correlator* const correlator_;
  Refusals* const refusals_;
  stages::Chain* const chain_;
  bool ready_ = false;
  bool fatal_ = false;
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_BACKEND_RELAY_H_
