// One spool write per batch of a worker's events, not one per audit
// event. Sessions stage their events (AuditSink::Stage) while they handle
// a batch and hold what they would send upstream; after the batch the
// worker writes every staged event with one write(2) and tells each
// session whether its events are on disk: it then relays what it held, or
// fails (an event that is not recorded never has its statement run).
//
// Loop thread only: the state is the calling thread's (one per worker).
#ifndef WARDEN_DATAPLANE_SESSION_AUDIT_WRITES_H_
#define WARDEN_DATAPLANE_SESSION_AUDIT_WRITES_H_

#include <functional>

#include "absl/status/status.h"
#include "dataplane/audit/sink.h"
#include "dataplane/net/event_loop.h"

namespace warden::dataplane::session {

// Runs `done` on this thread after the current batch of `loop`'s events,
// once the events `sink` staged on this thread are written (OK) or not (an
// error). Call once per session and batch; every call of a batch shares
// one write.
void AfterAuditWrite(net::EventLoop* loop, audit::AuditSink* sink,
                     std::function<void(const absl::Status&)> done);

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_AUDIT_WRITES_H_
