#include <string>
#include <vector>

#include "dataplane/pgwire/framing.h"
#include "dataplane/pgwire/messages.h"
#include "gtest/gtest.h"
#include "tests/unit/dataplane/pgwire/pgwire_test_util.h"

namespace warden::dataplane::pgwire {
namespace {

using testing::Cs;
using testing::I32;
using testing::Msg;
using testing::Packet;

TEST(NextMessageTest, EveryPrefixNeedsMoreThenFullMessageFrames) {
  const std::string msg = Msg('Q', Cs("SELECT 1"));
  ASSERT_EQ(msg.size(), 14u);
  for (size_t k = 0; k < msg.size(); ++k) {
    const Frame f = NextMessage(absl::string_view(msg).substr(0, k),
                                kDefaultMaxMessageSize);
    EXPECT_EQ(f.status, FrameStatus::kNeedMore) << "prefix " << k;
    EXPECT_TRUE(f.error.ok());
    EXPECT_EQ(f.size, k >= 5 ? msg.size() : 0u) << "prefix " << k;
  }
  const Frame f = NextMessage(msg, kDefaultMaxMessageSize);
  ASSERT_EQ(f.status, FrameStatus::kMessage);
  EXPECT_EQ(f.type, 'Q');
  EXPECT_EQ(f.size, msg.size());
  EXPECT_EQ(f.body, absl::string_view("SELECT 1\0", 9));
  // Zero-copy: the body points into the caller's buffer.
  EXPECT_EQ(f.body.data(), msg.data() + 5);
}

TEST(NextMessageTest, SplitAtEveryBoundaryOfAStream) {
  const std::string stream =
      Msg('P', Cs("s1") + Cs("SELECT $1") + testing::I16(1) + I32(23)) +
      Msg('S', "") + Msg('Q', Cs("x")) + Msg('X', "");
  const std::vector<char> want = {'P', 'S', 'Q', 'X'};
  for (size_t split = 0; split <= stream.size(); ++split) {
    // Deliver [0, split) then the rest, as two reads.
    std::string buffer;
    std::vector<char> got;
    for (absl::string_view chunk : {absl::string_view(stream).substr(0, split),
                                    absl::string_view(stream).substr(split)}) {
      buffer.append(chunk.data(), chunk.size());
      while (true) {
        const Frame f = NextMessage(buffer, kDefaultMaxMessageSize);
        ASSERT_NE(f.status, FrameStatus::kError) << f.error;
        if (f.status == FrameStatus::kNeedMore) break;
        ASSERT_TRUE(ValidateFrontend(f.type, f.body).ok());
        got.push_back(f.type);
        buffer.erase(0, f.size);
      }
    }
    EXPECT_EQ(got, want) << "split " << split;
    EXPECT_TRUE(buffer.empty());
  }
}

TEST(NextMessageTest, SeveralMessagesInOneBuffer) {
  const std::string buf =
      Msg('Q', Cs("a")) + Msg('S', "") + Msg('d', "xyz") + "Q\0";
  absl::string_view rest = buf;
  Frame f = NextMessage(rest, kDefaultMaxMessageSize);
  ASSERT_EQ(f.status, FrameStatus::kMessage);
  EXPECT_EQ(f.type, 'Q');
  EXPECT_EQ(f.size, 7u);
  rest.remove_prefix(f.size);
  f = NextMessage(rest, kDefaultMaxMessageSize);
  ASSERT_EQ(f.status, FrameStatus::kMessage);
  EXPECT_EQ(f.type, 'S');
  EXPECT_TRUE(f.body.empty());
  EXPECT_EQ(f.size, 5u);
  rest.remove_prefix(f.size);
  f = NextMessage(rest, kDefaultMaxMessageSize);
  ASSERT_EQ(f.status, FrameStatus::kMessage);
  EXPECT_EQ(f.type, 'd');
  EXPECT_EQ(f.body, "xyz");
  rest.remove_prefix(f.size);
  f = NextMessage(rest, kDefaultMaxMessageSize);
  EXPECT_EQ(f.status, FrameStatus::kNeedMore);
  EXPECT_EQ(f.size, 0u);
}

TEST(NextMessageTest, LengthBelowFourIsAnError) {
  for (int64_t len : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{-1},
                      int64_t{-2147483648LL}}) {
    const std::string buf = "Q" + I32(len) + "padding";
    const Frame f = NextMessage(buf, kDefaultMaxMessageSize);
    ASSERT_EQ(f.status, FrameStatus::kError) << len;
    EXPECT_EQ(f.error.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(f.error.message().find("below the minimum of 4"),
              std::string::npos)
        << f.error;
  }
}

TEST(NextMessageTest, LengthOfExactlyFourIsAnEmptyBody) {
  const std::string buf = "S" + I32(4);
  const Frame f = NextMessage(buf, kDefaultMaxMessageSize);
  ASSERT_EQ(f.status, FrameStatus::kMessage);
  EXPECT_TRUE(f.body.empty());
  EXPECT_EQ(f.size, 5u);
}

TEST(NextMessageTest, TwoGigabyteLengthFailsImmediately) {
  // Only the 5 header bytes are present: must not wait for 2 GB.
  const std::string buf = "Q" + I32(0x7fffffff);
  const Frame f = NextMessage(buf, kDefaultMaxMessageSize);
  ASSERT_EQ(f.status, FrameStatus::kError);
  EXPECT_EQ(f.error.message(),
            "message of type 'Q' declares 2147483647 bytes, over the "
            "67108864-byte limit");
  // Also against the larger backend limit.
  EXPECT_EQ(NextMessage(buf, kDefaultMaxBackendMessageSize).status,
            FrameStatus::kError);
}

TEST(NextMessageTest, ConfiguredMaxIsInclusive) {
  // total size = 1 + length; body of 95 bytes → total 100.
  const std::string ok = Msg('d', std::string(95, 'x'));
  ASSERT_EQ(ok.size(), 100u);
  EXPECT_EQ(NextMessage(ok, 100).status, FrameStatus::kMessage);
  const Frame f = NextMessage(ok, 99);
  ASSERT_EQ(f.status, FrameStatus::kError);
  EXPECT_EQ(f.error.message(),
            "message of type 'd' declares 99 bytes, over the 99-byte limit");
  // Oversize is detected from the header alone.
  EXPECT_EQ(NextMessage(absl::string_view(ok).substr(0, 5), 99).status,
            FrameStatus::kError);
}

TEST(NextMessageTest, GarbageIsRejected) {
  // An HTTP request parses as type 'G' with an absurd length.
  const Frame http = NextMessage("GET / HTTP/1.1\r\n", kDefaultMaxMessageSize);
  EXPECT_EQ(http.status, FrameStatus::kError);
  // A non-printable type byte is named in hex.
  const std::string junk = std::string("\x07") + I32(0x7fffffff);
  const Frame f = NextMessage(junk, kDefaultMaxMessageSize);
  ASSERT_EQ(f.status, FrameStatus::kError);
  EXPECT_NE(f.error.message().find("0x07"), std::string::npos) << f.error;
  // Well-framed garbage is caught by validation, not passed through.
  const std::string framed = Msg('\x07', "abc");
  const Frame g = NextMessage(framed, kDefaultMaxMessageSize);
  ASSERT_EQ(g.status, FrameStatus::kMessage);
  const absl::Status s = ValidateFrontend(g.type, g.body);
  EXPECT_EQ(s.message(), "unknown frontend message type 0x07");
}

TEST(NextStartupPacketTest, EveryPrefixNeedsMore) {
  const std::string pkt =
      Packet(I32(kProtocolV3) + Cs("user") + Cs("bob") + Cs(""));
  for (size_t k = 0; k < pkt.size(); ++k) {
    const Frame f = NextStartupPacket(absl::string_view(pkt).substr(0, k));
    EXPECT_EQ(f.status, FrameStatus::kNeedMore) << k;
    EXPECT_EQ(f.size, k >= 4 ? pkt.size() : 0u) << k;
  }
  const std::string with_trailing = pkt + "trailing";
  const Frame f = NextStartupPacket(with_trailing);
  ASSERT_EQ(f.status, FrameStatus::kMessage);
  EXPECT_EQ(f.type, 0);
  EXPECT_EQ(f.size, pkt.size());
  EXPECT_EQ(f.body, absl::string_view(pkt).substr(4));
}

TEST(NextStartupPacketTest, BadLengths) {
  for (int len : {0, 4, 7, -1}) {
    const Frame f = NextStartupPacket(I32(len) + std::string(8, 'x'));
    ASSERT_EQ(f.status, FrameStatus::kError) << len;
    EXPECT_NE(f.error.message().find("below the minimum of 8"),
              std::string::npos)
        << f.error;
  }
  EXPECT_EQ(NextStartupPacket(I32(8) + I32(kSslRequestCode)).status,
            FrameStatus::kMessage);
  const Frame big = NextStartupPacket(I32(10001));
  ASSERT_EQ(big.status, FrameStatus::kError);
  EXPECT_EQ(big.error.message(),
            "startup packet declares 10001 bytes, over the 10000-byte limit");
  EXPECT_EQ(NextStartupPacket(I32(10000)).status, FrameStatus::kNeedMore);
  EXPECT_EQ(NextStartupPacket(I32(0x7fffffff)).status, FrameStatus::kError);
  EXPECT_EQ(NextStartupPacket(I32(100), 50).status, FrameStatus::kError);
}

}  // namespace
}  // namespace warden::dataplane::pgwire
