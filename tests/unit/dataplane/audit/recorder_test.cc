#include "dataplane/audit/recorder.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/audit/sink.h"
#include "dataplane/audit/spool.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/audit.pb.h"

namespace warden::dataplane::audit {
namespace {

class RecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir =
        ::testing::TempDir() + "/recorder_" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir);
    auto spool = Spool::Open(dir, SpoolOptions());
    ASSERT_TRUE(spool.ok()) << spool.status();
    spool_ = *std::move(spool);
    recorder_ = std::make_unique<Recorder>(spool_.get());
  }
  warden::v1::AuditEvent Spooled(uint64_t sequence) {
    auto records = spool_->Read(sequence, 1, 1 << 24);
    EXPECT_TRUE(records.ok()) << records.status();
    warden::v1::AuditEvent event;
    if (records.ok() && !records->empty()) {
      EXPECT_TRUE(event.ParseFromString(records->front().payload));
    }
    return event;
  }
  static warden::v1::AuditEvent Shared(const std::string& user) {
    warden::v1::AuditEvent shared;
    shared.set_environment("prod");
    shared.set_session_id("s-1");
    shared.mutable_identity()->set_user(user);
    shared.mutable_identity()->add_groups("dba");
    return shared;
  }
  static warden::v1::AuditEvent Statement(const std::string& text) {
    warden::v1::AuditEvent event;
    event.set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
    event.mutable_statement()->set_text(text);
    return event;
  }
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Recorder> recorder_;
};

// The shared fields encoded once and an event's own part record the same
// event as the whole event does.
TEST_F(RecorderTest, SharedFieldsRecordTheSameEventAsAWholeOne) {
  const auto shared = EncodeShared(Shared("alice"));
  ASSERT_TRUE(shared.has_value());
  auto split = recorder_->Record(*shared, Statement("SELECT 1"));
  ASSERT_TRUE(split.ok()) << split.status();
  warden::v1::AuditEvent whole = Shared("alice");
  whole.MergeFrom(Statement("SELECT 1"));
  auto joined = recorder_->Record(whole);
  ASSERT_TRUE(joined.ok()) << joined.status();
  warden::v1::AuditEvent a = Spooled(*split);
  warden::v1::AuditEvent b = Spooled(*joined);
  EXPECT_TRUE(a.has_time());
  EXPECT_EQ(a.identity().user(), "alice");
  EXPECT_EQ(a.identity().groups_size(), 1);
  EXPECT_EQ(a.environment(), "prod");
  EXPECT_EQ(a.statement().text(), "SELECT 1");
  a.clear_time();
  b.clear_time();
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString())
      << a.DebugString() << "\nvs\n" << b.DebugString();
}

// An event's own part is still bounded: a statement that is not UTF-8 is
// repaired (and its bytes kept), the shared part left as it was.
TEST_F(RecorderTest, TheEventsOwnPartIsBounded) {
  const auto shared = EncodeShared(Shared("alice"));
  ASSERT_TRUE(shared.has_value());
  auto seq = recorder_->Record(*shared, Statement("SELECT '\xff'"));
  ASSERT_TRUE(seq.ok()) << seq.status();
  const warden::v1::AuditEvent e = Spooled(*seq);
  EXPECT_EQ(e.identity().user(), "alice");
  EXPECT_EQ(e.statement().text_bytes(), "SELECT '\xff'");
  EXPECT_GT(e.repairs().ByteSizeLong(), 0u);
}

// Shared fields that would need a repair are not encoded apart (their
// repairs and the event's would be two records of one event).
TEST_F(RecorderTest, SharedFieldsThatNeedARepairAreNotEncodedApart) {
  EXPECT_FALSE(EncodeShared(Shared("al\xffice")).has_value());
  EXPECT_FALSE(EncodeShared(Shared(std::string(10000, 'a'))).has_value());
}

// Both parts within bounds, not together: bounded as one event, so no
// recorded event is larger than the limit.
TEST_F(RecorderTest, APairOverTheEventLimitIsBoundedAsOneEvent) {
  warden::v1::AuditEvent big = Shared("alice");
  for (int i = 0; i < 200; ++i) {
    big.mutable_identity()->add_groups(std::string(4000, 'g'));
  }
  const auto shared = EncodeShared(big);
  ASSERT_TRUE(shared.has_value());
  ASSERT_GT(shared->size(), 700u * 1024);
  auto seq = recorder_->Record(*shared, Statement(std::string(250 * 1024, 's')));
  ASSERT_TRUE(seq.ok()) << seq.status();
  auto records = spool_->Read(*seq, 1, 1 << 24);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_LE(records->front().payload.size(), size_t{1} << 20);
  warden::v1::AuditEvent e;
  ASSERT_TRUE(e.ParseFromString(records->front().payload));
  EXPECT_EQ(e.identity().user(), "alice");
  EXPECT_GT(e.repairs().ByteSizeLong(), 0u);
}

// Shared bytes that do not decode cannot be bounded together with a large
// event: refused, never recorded over the limit (and nothing is staged).
TEST_F(RecorderTest, SharedBytesThatDoNotDecodeAreNotRecordedOverTheLimit) {
  const std::string garbage(900 * 1024, '\xff');
  auto seq = recorder_->Record(garbage, Statement(std::string(400 * 1024, 's')));
  ASSERT_FALSE(seq.ok());
  EXPECT_EQ(seq.status().code(), absl::StatusCode::kInternal);
  warden::v1::AuditEvent large = Statement(std::string(400 * 1024, 's'));
  auto staged = recorder_->Stage(garbage, &large);
  ASSERT_FALSE(staged.ok());
  ASSERT_TRUE(recorder_->WriteStaged().ok());
  // A small event with the same bytes is within the limit and kept as is
  // (the limit is what this guards).
  EXPECT_TRUE(recorder_->Record(std::string(10, 'x'), Statement("SELECT 1")).ok());
}

// The sender encodes its Append requests itself: the same bytes as the
// message built with add_encoded_events(spooled + source + sequence).
TEST(AppendEncodedEventTest, EncodesWhatTheRequestMessageWould) {
  warden::v1::AuditEvent event;
  event.set_session_id("s-1");
  event.mutable_statement()->set_text(std::string(300, 'x'));
  const std::string spooled = event.SerializeAsString();
  warden::v1::AuditEvent source;
  source.set_proxy_id("p1");
  const std::string source_bytes = source.SerializeAsString();
  warden::v1::AppendAuditRequest expected;
  std::string encoded;
  const std::vector<uint64_t> sequences = {1, 127, 128, 300, 1ull << 40};
  for (uint64_t sequence : sequences) {
    warden::v1::AuditEvent numbered;
    numbered.set_sequence(sequence);
    expected.add_encoded_events(spooled + source_bytes +
                                numbered.SerializeAsString());
    AppendEncodedEvent(spooled, source_bytes, sequence, &encoded);
  }
  EXPECT_EQ(encoded, expected.SerializeAsString());
  warden::v1::AppendAuditRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(encoded));
  ASSERT_EQ(parsed.encoded_events_size(), 5);
  warden::v1::AuditEvent last;
  ASSERT_TRUE(last.ParseFromString(parsed.encoded_events(4)));
  EXPECT_EQ(last.proxy_id(), "p1");
  EXPECT_EQ(last.sequence(), 1ull << 40);
  EXPECT_EQ(last.session_id(), "s-1");
  EXPECT_EQ(last.statement().text(), std::string(300, 'x'));
}

}  // namespace
}  // namespace warden::dataplane::audit
