// Whether a policy Watch stream is still alive, from what it delivered.
//
// warden-control sends a heartbeat (WatchHeartbeat: its head revision and
// interval) every few seconds on a stream whose hello asked for them. A
// connection that silently stops delivering (packets dropped, nothing
// reset) would otherwise look open until gRPC keepalive gives up, and a
// deactivation published meanwhile would not arrive. WatchLiveness is the
// bookkeeping for one stream: the bundle client tells it what arrived and
// asks Check() whether the stream is to be given up:
//
//  - silent: nothing arrived (no heartbeat, no bundle) for longer than the
//    bound, while the proxy was waiting for the next message (time spent
//    applying a bundle is the proxy's own, not silence);
//  - behind: a heartbeat named a newer revision than the proxy runs (and
//    not one it refused on this stream), and no bundle arrived within the
//    bound;
//  - late: the heartbeats say how long after the stream's hello each was
//    sent; the proxy's own time since it opened the stream, less that,
//    is how far the stream runs behind warden-control (the time the proxy
//    spent applying bundles excused). Past the bound, the stream is given
//    up however regularly heartbeats arrive (red team: a path that held
//    the stream's data back and let it out a heartbeat at a time, just
//    under the silence bound, kept a deactivation queued for minutes).
//
// Only a stream that has delivered one heartbeat is judged, or one opened
// after an earlier stream of this process delivered heartbeats
// (ExpectHeartbeats): a control plane that predates heartbeats sends none,
// and its quiet streams are healthy; but once this control plane is known
// to send them, an attacker cannot let a new connection through and
// blackhole it before its first heartbeat to be judged by keepalive again.
// The bound: three heartbeat intervals as the control plane announces them
// (15 s at its default of 5 s; at least 1 s), or the configured one, but
// never less than two announced intervals (a control plane with a slower
// heartbeat than the proxy expects must not make its streams flap).
//
// Not thread-safe; the caller locks. Pure (times are passed in), for tests.
#ifndef WARDEN_DATAPLANE_BUNDLE_CLIENT_WATCH_LIVENESS_H_
#define WARDEN_DATAPLANE_BUNDLE_CLIENT_WATCH_LIVENESS_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace warden::dataplane::bundle_client {

class WatchLiveness {
 public:
  // `silence_timeout`: how long a stream may deliver nothing (after its
  // first heartbeat) before it is presumed dead; zero: three announced
  // heartbeat intervals. `opened`: when the stream was opened.
  WatchLiveness(absl::Duration silence_timeout, absl::Time opened);

  // Missed heartbeats after which a stream is presumed dead, by default.
  static constexpr int kMissedHeartbeats = 3;
  // The bound while no interval was announced (warden-control's default
  // interval is 5 s), and the least one.
  static constexpr absl::Duration kDefaultBound = absl::Seconds(15);
  static constexpr absl::Duration kMinBound = absl::Seconds(1);

  // Judge silence from the stream's opening: an earlier stream delivered
  // heartbeats every `interval` (warden-control sends the first right
  // after the hello), so this one must too.
  void ExpectHeartbeats(absl::Duration interval);

  // A heartbeat arrived: the control plane is at `head_revision` and sends
  // the next within `interval` (zero: unknown). `running`: the revision the
  // proxy runs now.
  // `sent_after`: how long after the stream's hello warden-control sent it
  // (nullopt: a control plane that does not say).
  void OnHeartbeat(absl::Time now, uint64_t head_revision,
                   absl::Duration interval, uint64_t running,
                   std::optional<absl::Duration> sent_after = std::nullopt);
  // A bundle arrived; the proxy verifies and applies it now, which is not
  // silence however long it takes.
  void OnBundle(absl::Time now);
  // The proxy finished applying (or refusing) the bundle: silence is
  // counted from here again (answering it included: an ACK that cannot be
  // written is a dead stream too).
  void OnHandled(absl::Time now);
  // The proxy refused (NACKed) `revision` on this stream: the server will
  // not resend it here, so heartbeats naming it are not "behind".
  void OnRefused(uint64_t revision);

  // OK while the stream is to be kept; UNAVAILABLE with why not (silent,
  // or behind) otherwise. `running`: the revision the proxy runs now.
  absl::Status Check(absl::Time now, uint64_t running) const;

  // Whether silence is judged on this stream (a heartbeat arrived on it,
  // or heartbeats are expected), and whether one arrived on it.
  bool armed() const { return armed_; }
  bool heard_heartbeat() const { return heard_heartbeat_; }
  // When the stream last delivered something, or the proxy last finished
  // handling it: from when on a dead stream may have been dead.
  absl::Time last_heard() const { return last_heard_; }
  // The silence bound now in force.
  absl::Duration bound() const;

 private:
  const absl::Duration silence_timeout_;
  const absl::Time opened_;
  // Time spent applying bundles (not the stream's lateness), and since
  // when the one being applied (handling_).
  absl::Duration excused_ = absl::ZeroDuration();
  absl::Time handling_since_;
  // The last heartbeat's send time, after the stream's hello, and how
  // late it already was when it arrived.
  std::optional<absl::Duration> sent_after_;
  absl::Duration lag_at_receipt_ = absl::ZeroDuration();
  absl::Duration interval_ = absl::ZeroDuration();
  bool armed_ = false;
  bool heard_heartbeat_ = false;  // on this stream.
  bool handling_ = false;  // between OnBundle and OnHandled.
  absl::Time last_heard_;
  // The newest head a heartbeat named, and since when the proxy has been
  // behind it without a bundle arriving (InfiniteFuture: not behind).
  uint64_t head_ = 0;
  absl::Time behind_since_ = absl::InfiniteFuture();
  uint64_t refused_ = 0;
};

}  // namespace warden::dataplane::bundle_client

#endif  // WARDEN_DATAPLANE_BUNDLE_CLIENT_WATCH_LIVENESS_H_
