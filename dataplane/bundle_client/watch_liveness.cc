#include "dataplane/bundle_client/watch_liveness.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace warden::dataplane::bundle_client {
namespace {

std::string Seconds(absl::Duration d) {
  return absl::FormatDuration(absl::Trunc(d, absl::Seconds(1)));
}

}  // namespace

WatchLiveness::WatchLiveness(absl::Duration silence_timeout, absl::Time opened)
    : silence_timeout_(silence_timeout), opened_(opened), last_heard_(opened) {}

absl::Duration WatchLiveness::bound() const {
  if (silence_timeout_ > absl::ZeroDuration()) {
    return std::max(silence_timeout_, 2 * interval_);
  }
  if (interval_ <= absl::ZeroDuration()) return kDefaultBound;
  return std::max(kMissedHeartbeats * interval_, kMinBound);
}

void WatchLiveness::ExpectHeartbeats(absl::Duration interval) {
  armed_ = true;
  if (interval > absl::ZeroDuration()) interval_ = interval;
}

void WatchLiveness::OnHeartbeat(absl::Time now, uint64_t head_revision,
                                absl::Duration interval, uint64_t running,
                                std::optional<absl::Duration> sent_after) {
  armed_ = true;
  heard_heartbeat_ = true;
  if (sent_after.has_value()) {
    sent_after_ = sent_after;
    lag_at_receipt_ = (now - opened_ - excused_) - *sent_after;
  }
  last_heard_ = std::max(last_heard_, now);
  if (interval > absl::ZeroDuration()) interval_ = interval;
  if (head_revision > running && head_revision > refused_) {
    // Behind since the first heartbeat that said so; a later heartbeat
    // naming a newer head does not restart the clock.
    if (behind_since_ == absl::InfiniteFuture()) behind_since_ = now;
    head_ = std::max(head_, head_revision);
  } else {
    behind_since_ = absl::InfiniteFuture();
    head_ = head_revision;
  }
}

void WatchLiveness::OnBundle(absl::Time now) {
  last_heard_ = std::max(last_heard_, now);
  handling_ = true;
  handling_since_ = now;
  // A bundle is what "behind" waits for; whether it is the one (or is
  // accepted) the next heartbeat tells.
  behind_since_ = absl::InfiniteFuture();
}

void WatchLiveness::OnHandled(absl::Time now) {
  last_heard_ = std::max(last_heard_, now);
  if (handling_) excused_ += std::max(absl::ZeroDuration(), now - handling_since_);
  handling_ = false;
}

void WatchLiveness::OnRefused(uint64_t revision) {
  refused_ = std::max(refused_, revision);
}

absl::Status WatchLiveness::Check(absl::Time now, uint64_t running) const {
  if (!armed_ || handling_) return absl::OkStatus();
  const absl::Duration limit = bound();
  const absl::Duration silent = now - last_heard_;
  if (silent > limit && !heard_heartbeat_) {
    return absl::UnavailableError(absl::StrCat(
        "no heartbeat on this watch stream for ", Seconds(silent),
        " (warden-control sent them on earlier streams; bound ",
        Seconds(limit), "): the connection is presumed dead; reconnecting"));
  }
  if (silent > limit) {
    return absl::UnavailableError(absl::StrCat(
        "watch stream silent for ", Seconds(silent),
        " (no heartbeat or bundle from warden-control within ",
        Seconds(limit),
        "): the connection is presumed dead; reconnecting"));
  }
  // How far behind warden-control what arrived is: its newest heartbeat
  // was sent `sent_after_` into the stream; this much of the stream's time
  // has passed here. Judged once the last heartbeat already came late by
  // more than an interval: a stream that is merely silent is reported as
  // silent (above), not as late.
  const absl::Duration interval =
      interval_ > absl::ZeroDuration() ? interval_ : kDefaultBound / 3;
  if (sent_after_.has_value() && lag_at_receipt_ > interval) {
    const absl::Duration late = (now - opened_ - excused_) - *sent_after_;
    if (late > limit) {
      return absl::UnavailableError(absl::StrCat(
          "watch stream runs ", Seconds(late),
          " behind warden-control (its heartbeats arrive ever later; bound ",
          Seconds(limit),
          "): the connection is presumed held back; reconnecting"));
    }
  }
  if (behind_since_ != absl::InfiniteFuture() && head_ > running &&
      head_ > refused_ && now - behind_since_ > limit) {
    return absl::UnavailableError(absl::StrCat(
        "warden-control is at policy revision ", head_,
        " but this proxy runs ", running, " and no bundle followed for ",
        Seconds(now - behind_since_), "; reconnecting"));
  }
  return absl::OkStatus();
}

}  // namespace warden::dataplane::bundle_client
