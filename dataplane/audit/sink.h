// What a session needs of the audit trail, without the transport: a sink
// that writes an event where it is durable, and, in sync mode, the control
// plane's acknowledgements. The Recorder and the Sender implement them; the
// session and its stages see only these (no gRPC on the statement path).
#ifndef WARDEN_DATAPLANE_AUDIT_SINK_H_
#define WARDEN_DATAPLANE_AUDIT_SINK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::dataplane::audit {

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Writes `event` durably and returns its sequence; an error means it is
  // NOT recorded (the caller must not let the statement run). `size`
  // (optional): the encoded event's bytes (sessions budget audit bytes by
  // it).
  virtual absl::StatusOr<uint64_t> Record(warden::v1::AuditEvent event,
                                          size_t* size) = 0;
  // The same for an event whose fields shared by a session's events
  // (identity, environment, session id) were encoded once, in `shared`
  // (EncodeShared), and are not set in `event`: only `event` is bounded
  // and encoded here, and the recorded event is `shared`'s fields and
  // `event`'s.
  virtual absl::StatusOr<uint64_t> Record(absl::string_view shared,
                                          warden::v1::AuditEvent event,
                                          size_t* size) = 0;
  // Stage is Record without the write: the event has its sequence, and
  // the next WriteStaged (of any thread) writes it with every other staged
  // event in one write(2). The caller must not act on it (relay its
  // statement) before this thread's WriteStaged returned OK. `shared` as
  // for Record, or empty for a whole event. `*event` is left as recorded
  // (stamped, bounded), so that the caller may move its fields on.
  virtual absl::StatusOr<uint64_t> Stage(absl::string_view shared,
                                         warden::v1::AuditEvent* event,
                                         size_t* size) = 0;
  // Writes what is staged; OK when every event this thread staged since
  // its previous WriteStaged is written, an error when any of them is not
  // recorded.
  virtual absl::Status WriteStaged() = 0;
  // How full the local spool is, 0 to 1 (sessions are slowed past half).
  virtual double Fill() const = 0;
  // The spool's size in bytes (what Fill is a share of); 0 when unknown.
  virtual uint64_t CapacityBytes() const { return 0; }
};

// The encoding of `shared` (the fields a session's events have in common)
// for AuditSink::Record, or nothing when it would need a repair to be
// recorded (too long, not UTF-8): then the session records whole events.
std::optional<std::string> EncodeShared(const warden::v1::AuditEvent& shared);

class AuditAcks {
 public:
  virtual ~AuditAcks() = default;
  // Highest sequence the control plane acknowledged.
  virtual uint64_t acknowledged() const = 0;
  // Runs `done` (on any thread, or at once) once `sequence` is
  // acknowledged.
  virtual void WhenAcknowledged(uint64_t sequence,
                                std::function<void()> done) = 0;
  // Sends the pending events now instead of at the next poll.
  virtual void Nudge() = 0;
};

}  // namespace warden::dataplane::audit

#endif  // WARDEN_DATAPLANE_AUDIT_SINK_H_
