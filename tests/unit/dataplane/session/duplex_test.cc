// A session's two sockets, over socketpairs: bytes handed on from message
// boundaries with the rest kept, writes buffered when a socket is full and
// flushed later, backpressure from one side to the other, the hold on the
// upstream, closing after the last bytes, and a lost peer.
#include "dataplane/session/duplex.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace warden::dataplane::session {
namespace {

// The session, scripted: uses whole `message_size`-byte messages.
class FakeSession : public Duplex::Callbacks {
 public:
  void OnEvents(Side, uint32_t) override {}
  bool MayRead(Side s) const override {
    return s == Side::kClient ? client_readable : upstream_readable;
  }
  bool MayReadMore(Side) override { return more; }
  void DeferRead(Side) override { ++deferred; }
  size_t OnBytes(Side s, absl::string_view buf) override {
    const size_t used = buf.size() - buf.size() % message_size;
    (s == Side::kClient ? from_client : from_upstream).append(buf.data(), used);
    return used;
  }
  bool StopAfterRead(Side) override { return false; }
  void OnPeerLost(Side s, bool eof, const std::string&) override {
    lost.push_back(s);
    lost_eof = eof;
  }
  bool ended() const override { return false; }
  bool UpstreamHeld() const override { return held; }
  void OnPeerClosed() override { ++closed; }

  bool client_readable = true;
  bool upstream_readable = true;
  bool more = true;
  bool held = false;
  size_t message_size = 1;
  int deferred = 0;
  int closed = 0;
  std::string from_client, from_upstream;
  std::vector<Side> lost;
  bool lost_eof = false;
};

struct DuplexTest : ::testing::Test {
  DuplexTest() {
    Pair(&client_far, Side::kClient);
    Pair(&upstream_far, Side::kUpstream);
  }
  ~DuplexTest() override {
    if (client_far >= 0) close(client_far);
    if (upstream_far >= 0) close(upstream_far);
  }
  // Connects side `s` to a socketpair whose other end is `*far`.
  void Pair(int* far, Side s) {
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    duplex.peer(s).conn = std::make_unique<net::Conn>(fds[0]);
    *far = fds[1];
  }
  static std::string ReadAll(int fd) {
    std::string got;
    char buf[65536];
    for (;;) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) return got;
      got.append(buf, n);
    }
  }
  static void Write(int fd, const std::string& data) {
    ASSERT_EQ(write(fd, data.data(), data.size()),
              static_cast<ssize_t>(data.size()));
  }

  FakeSession session;
  Duplex duplex{&session, /*max_buffered_bytes=*/1024};
  int client_far = -1, upstream_far = -1;
};

TEST_F(DuplexTest, BytesGoToTheSessionFromMessageBoundaries) {
  session.message_size = 4;
  Write(client_far, "abcdef");
  duplex.ReadLoop(Side::kClient);
  EXPECT_EQ(session.from_client, "abcd");
  EXPECT_EQ(duplex.client().in, "ef");  // kept for the next read.
  Write(client_far, "gh");
  duplex.ReadLoop(Side::kClient);
  EXPECT_EQ(session.from_client, "abcdefgh");
  EXPECT_TRUE(duplex.client().in.empty());
}

TEST_F(DuplexTest, NothingIsReadWhileTheSessionSaysNo) {
  Write(client_far, "abc");
  session.client_readable = false;
  duplex.ReadLoop(Side::kClient);
  EXPECT_EQ(session.from_client, "");
  session.client_readable = true;
  session.more = false;
  duplex.ReadLoop(Side::kClient);
  EXPECT_EQ(session.from_client, "");
  EXPECT_FALSE(duplex.client().read_paused);
}

TEST_F(DuplexTest, AFullSocketBuffersAndBackpressuresTheOtherSide) {
  // Fill the upstream socket until Send has to buffer.
  const std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 64 && duplex.upstream().pending() < 1024; ++i) {
    duplex.Send(Side::kUpstream, chunk);
  }
  ASSERT_GE(duplex.upstream().pending(), 1024u);
  // The client is not read while the upstream has that much unsent.
  Write(client_far, "q");
  duplex.ReadLoop(Side::kClient);
  EXPECT_EQ(session.from_client, "");
  EXPECT_TRUE(duplex.client().read_paused);
  // The upstream reads it all; the flush drains and resumes the client.
  std::string drained;
  for (int i = 0; i < 1000 && duplex.upstream().pending() > 0; ++i) {
    drained += ReadAll(upstream_far);
    duplex.Flush(Side::kUpstream);
  }
  EXPECT_EQ(duplex.upstream().pending(), 0u);
  EXPECT_FALSE(duplex.client().read_paused);
  EXPECT_EQ(session.from_client, "q");
}

TEST_F(DuplexTest, TheUpstreamGetsNothingWhileHeld) {
  session.held = true;
  duplex.Send(Side::kUpstream, "one");
  duplex.Send(Side::kUpstream, "two");
  duplex.Flush(Side::kUpstream);
  EXPECT_EQ(ReadAll(upstream_far), "");
  EXPECT_EQ(duplex.upstream().pending(), 6u);
  // The client side is not held.
  duplex.Send(Side::kClient, "hi");
  EXPECT_EQ(ReadAll(client_far), "hi");
  session.held = false;
  duplex.Flush(Side::kUpstream);
  EXPECT_EQ(ReadAll(upstream_far), "onetwo");
}

TEST_F(DuplexTest, ASideClosesAfterItsLastBytes) {
  duplex.Send(Side::kClient, "bye");
  duplex.client().close_after_flush = true;
  duplex.Flush(Side::kClient);
  EXPECT_FALSE(duplex.client().open());
  EXPECT_EQ(session.closed, 1);
  EXPECT_EQ(ReadAll(client_far), "bye");
}

TEST_F(DuplexTest, AClosedPeerIsReported) {
  close(client_far);
  client_far = -1;
  duplex.ReadLoop(Side::kClient);
  ASSERT_EQ(session.lost.size(), 1u);
  EXPECT_EQ(session.lost[0], Side::kClient);
  EXPECT_TRUE(session.lost_eof);
}

}  // namespace
}  // namespace warden::dataplane::session
