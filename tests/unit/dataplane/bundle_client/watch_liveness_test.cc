#include "dataplane/bundle_client/watch_liveness.h"

#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace warden::dataplane::bundle_client {
namespace {

constexpr absl::Duration kBound = absl::Seconds(15);
constexpr absl::Duration kInterval = absl::Seconds(5);

class WatchLivenessTest : public ::testing::Test {
 protected:
  const absl::Time t0_ = absl::FromUnixSeconds(1700000000);
  absl::Time At(double seconds) const {
    return t0_ + absl::Milliseconds(static_cast<int64_t>(seconds * 1000));
  }
};

TEST_F(WatchLivenessTest, AStreamWithoutHeartbeatsIsNeverSilent) {
  // A control plane that predates heartbeats: quiet streams stay.
  WatchLiveness live(kBound, At(0));
  EXPECT_FALSE(live.armed());
  EXPECT_TRUE(live.Check(At(3600), 7).ok());
  live.OnBundle(At(1));
  live.OnHandled(At(2));
  EXPECT_FALSE(live.armed());
  EXPECT_TRUE(live.Check(At(3600), 7).ok());
}

TEST_F(WatchLivenessTest, OnceHeartbeatsWereSeenANewStreamIsJudgedFromItsOpening) {
  // An attacker lets the new connection through and blackholes it before
  // its first heartbeat: it is still given up within the bound.
  WatchLiveness live(absl::ZeroDuration(), At(0));
  live.ExpectHeartbeats(absl::Seconds(1));
  EXPECT_TRUE(live.armed());
  EXPECT_EQ(live.bound(), absl::Seconds(3));
  EXPECT_TRUE(live.Check(At(3), 0).ok());
  const absl::Status dead = live.Check(At(3.5), 0);
  EXPECT_EQ(dead.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(dead.message().find("no heartbeat on this watch stream for 3s"),
            absl::string_view::npos)
      << dead;
  // A bundle alone (the head, right after the hello) does not disarm it.
  WatchLiveness bundle_only(absl::ZeroDuration(), At(0));
  bundle_only.ExpectHeartbeats(kInterval);
  bundle_only.OnBundle(At(0.1));
  bundle_only.OnHandled(At(0.2));
  EXPECT_FALSE(bundle_only.Check(At(15.5), 1).ok());
  // Once its heartbeats come, it is judged as usual.
  WatchLiveness fine(absl::ZeroDuration(), At(0));
  fine.ExpectHeartbeats(kInterval);
  fine.OnHeartbeat(At(0.1), 1, kInterval, 1);
  EXPECT_TRUE(fine.Check(At(15), 1).ok());
  EXPECT_NE(fine.Check(At(15.5), 1).message().find("watch stream silent"),
            absl::string_view::npos);
}

TEST_F(WatchLivenessTest, HeartbeatsKeepItAlive) {
  WatchLiveness live(kBound, At(0));
  for (int i = 1; i <= 20; ++i) {
    live.OnHeartbeat(At(5 * i), 3, kInterval, 3);
    EXPECT_TRUE(live.Check(At(5 * i + 4.9), 3).ok()) << i;
  }
  EXPECT_TRUE(live.armed());
}

TEST_F(WatchLivenessTest, SilentPastTheBoundAfterAHeartbeat) {
  WatchLiveness live(kBound, At(0));
  live.OnHeartbeat(At(5), 3, kInterval, 3);
  EXPECT_TRUE(live.Check(At(20), 3).ok());  // exactly the bound: kept.
  const absl::Status dead = live.Check(At(20.5), 3);
  EXPECT_EQ(dead.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(dead.message().find("watch stream silent for 15s"),
            absl::string_view::npos)
      << dead;
  EXPECT_EQ(live.last_heard(), At(5));
  // Still dead later, with the longer silence said.
  EXPECT_NE(live.Check(At(42), 3).message().find("silent for 37s"),
            absl::string_view::npos);
}

TEST_F(WatchLivenessTest, ABundleCountsAsHeard) {
  WatchLiveness live(kBound, At(0));
  live.OnHeartbeat(At(1), 3, kInterval, 3);
  live.OnBundle(At(10));
  live.OnHandled(At(10.1));
  EXPECT_TRUE(live.Check(At(25), 4).ok());
  EXPECT_FALSE(live.Check(At(25.2), 4).ok());
}

TEST_F(WatchLivenessTest, ApplyingABundleIsNotSilence) {
  // Verifying and compiling a large directory takes the proxy's own time;
  // the stream is not judged meanwhile, and silence counts from the end.
  WatchLiveness live(kBound, At(0));
  live.OnHeartbeat(At(1), 4, kInterval, 3);
  live.OnBundle(At(2));
  EXPECT_TRUE(live.Check(At(60), 3).ok());
  live.OnHandled(At(61));
  EXPECT_TRUE(live.Check(At(75), 4).ok());
  EXPECT_FALSE(live.Check(At(76.5), 4).ok());
}

TEST_F(WatchLivenessTest, TheBoundIsAtLeastTwoAnnouncedIntervals) {
  // A control plane with a slower heartbeat than this proxy's bound
  // assumes must not make its streams flap.
  WatchLiveness live(absl::Seconds(15), At(0));
  live.OnHeartbeat(At(1), 3, absl::Seconds(20), 3);
  EXPECT_EQ(live.bound(), absl::Seconds(40));
  EXPECT_TRUE(live.Check(At(40), 3).ok());
  EXPECT_FALSE(live.Check(At(41.5), 3).ok());
  // A faster one does not shorten the configured bound.
  WatchLiveness fast(absl::Seconds(15), At(0));
  fast.OnHeartbeat(At(1), 3, absl::Seconds(1), 3);
  EXPECT_EQ(fast.bound(), absl::Seconds(15));
  // Nor does a heartbeat that announces no interval.
  WatchLiveness unknown(absl::Seconds(15), At(0));
  unknown.OnHeartbeat(At(1), 3, absl::ZeroDuration(), 3);
  EXPECT_EQ(unknown.bound(), absl::Seconds(15));
}

TEST_F(WatchLivenessTest, UnconfiguredTheBoundIsThreeAnnouncedIntervals) {
  WatchLiveness live(absl::ZeroDuration(), At(0));
  EXPECT_EQ(live.bound(), absl::Seconds(15));  // nothing announced yet.
  live.OnHeartbeat(At(1), 3, kInterval, 3);
  EXPECT_EQ(live.bound(), absl::Seconds(15));  // warden-control's default.
  EXPECT_TRUE(live.Check(At(16), 3).ok());
  EXPECT_NE(live.Check(At(16.5), 3).message().find("silent for 15s"),
            absl::string_view::npos);
  // A control plane with a faster heartbeat (--watch-heartbeat 1s): 3 s.
  WatchLiveness fast(absl::ZeroDuration(), At(0));
  fast.OnHeartbeat(At(1), 3, absl::Seconds(1), 3);
  EXPECT_EQ(fast.bound(), absl::Seconds(3));
  EXPECT_TRUE(fast.Check(At(3.9), 3).ok());
  EXPECT_FALSE(fast.Check(At(4.1), 3).ok());
  // Never under a second.
  WatchLiveness fastest(absl::ZeroDuration(), At(0));
  fastest.OnHeartbeat(At(1), 3, absl::Milliseconds(100), 3);
  EXPECT_EQ(fastest.bound(), WatchLiveness::kMinBound);
  // Nor without heartbeats at all.
  WatchLiveness quiet(absl::ZeroDuration(), At(0));
  EXPECT_TRUE(quiet.Check(At(3600), 3).ok());
}

TEST_F(WatchLivenessTest, BehindWithoutABundleIsUnhealthy) {
  // Heartbeats keep arriving but name a revision that never comes.
  WatchLiveness live(kBound, At(0));
  live.OnHeartbeat(At(1), 3, kInterval, 3);
  for (int i = 1; i <= 4; ++i) {
    live.OnHeartbeat(At(1 + 5 * i), 5, kInterval, 3);
  }
  EXPECT_TRUE(live.Check(At(21), 3).ok());  // behind since 6 s: 15 s.
  const absl::Status behind = live.Check(At(21.5), 3);
  EXPECT_EQ(behind.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(behind.message().find("warden-control is at policy revision 5 "
                                  "but this proxy runs 3"),
            absl::string_view::npos)
      << behind;
  // It got there by other means (e.g. running is read afresh): fine.
  EXPECT_TRUE(live.Check(At(21.5), 5).ok());
}

TEST_F(WatchLivenessTest, ABundleEndsBeingBehind) {
  WatchLiveness live(kBound, At(0));
  live.OnHeartbeat(At(1), 5, kInterval, 3);  // the bundle is on its way.
  live.OnBundle(At(1.1));
  live.OnHandled(At(1.5));
  live.OnHeartbeat(At(6), 5, kInterval, 5);
  live.OnHeartbeat(At(11), 5, kInterval, 5);
  live.OnHeartbeat(At(16), 5, kInterval, 5);
  EXPECT_TRUE(live.Check(At(20), 5).ok());
  // A newer head announced later starts its own clock.
  live.OnHeartbeat(At(21), 6, kInterval, 5);
  live.OnHeartbeat(At(26), 6, kInterval, 5);
  live.OnHeartbeat(At(31), 6, kInterval, 5);
  EXPECT_TRUE(live.Check(At(35), 5).ok());
  live.OnHeartbeat(At(36), 6, kInterval, 5);
  EXPECT_FALSE(live.Check(At(36.5), 5).ok());
}

TEST_F(WatchLivenessTest, ARefusedRevisionIsNotBehind) {
  // The server does not resend a NACKed revision on the stream; the proxy
  // knows why it does not run it (the fleet view shows the NACK).
  WatchLiveness live(kBound, At(0));
  live.OnBundle(At(0.5));
  live.OnRefused(5);
  live.OnHandled(At(0.6));
  for (int i = 1; i <= 10; ++i) live.OnHeartbeat(At(5 * i), 5, kInterval, 3);
  EXPECT_TRUE(live.Check(At(52), 3).ok());
  // A newer one than the refused one is expected again.
  for (int i = 11; i <= 15; ++i) live.OnHeartbeat(At(5 * i), 6, kInterval, 3);
  EXPECT_FALSE(live.Check(At(75), 3).ok());
}

TEST_F(WatchLivenessTest, AHeadBelowTheRunningRevisionIsNotBehind) {
  // A proxy whose state came from another control plane runs a higher
  // revision than this one's head; that is the NACK path, not silence.
  WatchLiveness live(kBound, At(0));
  for (int i = 1; i <= 10; ++i) live.OnHeartbeat(At(5 * i), 2, kInterval, 9);
  EXPECT_TRUE(live.Check(At(52), 9).ok());
}

// Red team: a path that holds the stream's data back and lets it out one
// heartbeat at a time, every 12 s (under the 15 s silence bound), with the
// queue growing: heartbeats arrive regularly but ever later, and the
// deactivation's bundle waits behind them.
TEST_F(WatchLivenessTest, HeartbeatsThatArriveEverLaterAreLate) {
  WatchLiveness live(absl::ZeroDuration(), At(0));
  // On time: sent n*5 s into the stream, arriving right after.
  for (int n = 0; n <= 4; ++n) {
    live.OnHeartbeat(At(5 * n + 0.05), 1, kInterval, 1, absl::Seconds(5 * n));
    EXPECT_TRUE(live.Check(At(5 * n + 4.9), 1).ok()) << n;
  }
  // Then released every 12 s, the next one each time: heartbeat k is sent
  // at 5k s and arrives at 20 + 12(k - 4) s.
  int k = 5;
  absl::Status verdict;
  double t = 20;
  for (; k < 20; ++k) {
    t += 12;
    live.OnHeartbeat(At(t), 1, kInterval, 1, absl::Seconds(5 * k));
    verdict = live.Check(At(t + 0.25), 1);
    if (!verdict.ok()) break;
  }
  ASSERT_FALSE(verdict.ok());
  EXPECT_NE(verdict.message().find("behind warden-control"),
            absl::string_view::npos)
      << verdict;
  // Given up once the lag passed the bound: at the third such release
  // (lag 7, 14, then 21 s), never silent for the 15 s bound meanwhile.
  EXPECT_EQ(k, 7);
}

TEST_F(WatchLivenessTest, TimeSpentApplyingABundleIsNotLateness) {
  WatchLiveness live(absl::ZeroDuration(), At(0));
  live.OnHeartbeat(At(0.05), 1, kInterval, 1, absl::ZeroDuration());
  // A bundle that takes 40 s to verify and apply.
  live.OnBundle(At(1));
  live.OnHandled(At(41));
  // The heartbeats queued meanwhile come at once, sent 5 to 40 s in.
  live.OnHeartbeat(At(41.01), 2, kInterval, 2, absl::Seconds(40));
  EXPECT_TRUE(live.Check(At(41.5), 2).ok());
  // A control plane that does not say when it sent them: no lateness.
  WatchLiveness old(absl::ZeroDuration(), At(0));
  for (int n = 0; n < 10; ++n) old.OnHeartbeat(At(12 * n), 1, kInterval, 1);
  EXPECT_TRUE(old.Check(At(12 * 9 + 1), 1).ok());
  EXPECT_TRUE(old.heard_heartbeat());
}

}  // namespace
}  // namespace warden::dataplane::bundle_client
