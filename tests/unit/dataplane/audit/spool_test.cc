#include "dataplane/audit/spool.h"

#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::dataplane::audit {
namespace {

using ::testing::HasSubstr;

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/spool_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<Spool> Open(SpoolOptions options = {}) {
    auto spool = Spool::Open(dir_, options);
    EXPECT_TRUE(spool.ok()) << spool.status();
    return spool.ok() ? *std::move(spool) : nullptr;
  }
  std::vector<std::string> Segments() {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      const std::string name = e.path().filename();
      if (name.rfind("seg-", 0) == 0) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::string dir_;
};

TEST_F(SpoolTest, AppendsAndReadsInOrderFromOne) {
  auto spool = Open();
  for (int i = 1; i <= 5; ++i) {
    auto seq = spool->Append(absl::StrCat("event-", i));
    ASSERT_TRUE(seq.ok());
    EXPECT_EQ(*seq, static_cast<uint64_t>(i));
  }
  auto all = spool->Read(1, 100, 1 << 20);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ((*all)[0].payload, "event-1");
  EXPECT_EQ((*all)[4].sequence, 5u);
  auto some = spool->Read(3, 2, 1 << 20);
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ((*some)[0].sequence, 3u);
  EXPECT_EQ((*some)[1].payload, "event-4");
  const SpoolStats stats = spool->stats();
  EXPECT_EQ(stats.pending_events, 5u);
  EXPECT_EQ(stats.next_sequence, 6u);
  EXPECT_LT(stats.oldest_pending, absl::InfiniteFuture());
  EXPECT_EQ(stats.synced_through, 0u);
  ASSERT_TRUE(spool->Sync().ok());
  EXPECT_EQ(spool->stats().synced_through, 5u);
}

TEST_F(SpoolTest, SequencesAndEventsSurviveARestart) {
  {
    auto spool = Open();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(spool->Append("x").ok());
    ASSERT_TRUE(spool->Acknowledge(1).ok());
  }
  auto spool = Open();
  EXPECT_EQ(spool->stats().next_sequence, 4u);
  EXPECT_EQ(spool->stats().acked, 1u);
  EXPECT_EQ(spool->stats().pending_events, 2u);
  auto seq = spool->Append("y");
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 4u);
  auto rest = spool->Read(2, 10, 1 << 20);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 3u);
  EXPECT_EQ(rest->back().payload, "y");
}

// "acked" is not rewritten (and fsynced) per acknowledgement: at each
// Sync, before any segment is deleted, and on close. A crash in between
// only makes the sender resend what the control plane already holds.
// Staged events are written together by the next WriteStaged, of any
// thread, in sequence order; not before (the sender never reads them).
TEST_F(SpoolTest, StagedEventsAreWrittenTogetherInOrder) {
  auto spool = Open();
  std::vector<SpoolTicket> tickets;
  for (int i = 1; i <= 3; ++i) {
    auto t = spool->Stage(absl::StrCat("e", i));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->sequence, static_cast<uint64_t>(i));
    tickets.push_back(*t);
  }
  EXPECT_FALSE(spool->Written(tickets.back()));
  auto none = spool->Read(1, 100, 1 << 20);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(spool->stats().pending_events, 3u);  // counted against the limit
  ASSERT_TRUE(spool->WriteStaged().ok());
  for (const SpoolTicket& t : tickets) EXPECT_TRUE(spool->Written(t));
  auto all = spool->Read(1, 100, 1 << 20);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[2].payload, "e3");
  // Closing writes what is still staged.
  ASSERT_TRUE(spool->Stage("e4").ok());
  spool.reset();
  spool = Open();
  EXPECT_EQ(spool->stats().next_sequence, 5u);
}

TEST_F(SpoolTest, ThreadsStagingAndWritingKeepSequencesWhole) {
  auto spool = Open(SpoolOptions{.segment_bytes = 4096});
  constexpr int kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&spool, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto ticket = spool->Stage(absl::StrCat("t", t, "-", i));
        ASSERT_TRUE(ticket.ok());
        if (i % 3 == 0) {
          ASSERT_TRUE(spool->WriteStaged().ok());
          EXPECT_TRUE(spool->Written(*ticket));
        }
      }
      ASSERT_TRUE(spool->WriteStaged().ok());
    });
  }
  for (auto& t : threads) t.join();
  auto all = spool->Read(1, 100000, 1 << 30);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u * kPerThread);
  std::set<std::string> payloads;
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].sequence, i + 1);
    payloads.insert((*all)[i].payload);
  }
  EXPECT_EQ(payloads.size(), 4u * kPerThread);
  spool.reset();
  spool = Open(SpoolOptions{.segment_bytes = 4096});  // recovers cleanly
  EXPECT_EQ(spool->stats().next_sequence, 4u * kPerThread + 1);
}

// A write that fails records none of its events: each is reported not
// written, their sequences are used again (no gap), and nothing torn is
// left in front of later events.
TEST_F(SpoolTest, AFailedWriteDropsItsEventsAndReusesTheirSequences) {
  auto spool = Open();
  ASSERT_TRUE(spool->Append("before").ok());
  const auto size = std::filesystem::file_size(Segments().front());
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = size + 100;  // room for a part of the batch only
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  auto a = spool->Stage(std::string(60, 'a'));
  auto b = spool->Stage(std::string(60, 'b'));
  ASSERT_TRUE(a.ok() && b.ok());
  const absl::Status failed = spool->WriteStaged();
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  EXPECT_FALSE(failed.ok());
  EXPECT_FALSE(spool->Written(*a));
  EXPECT_FALSE(spool->Written(*b));
  EXPECT_EQ(std::filesystem::file_size(Segments().front()), size);
  auto c = spool->Stage("after");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->sequence, a->sequence);  // used again
  ASSERT_TRUE(spool->WriteStaged().ok());
  EXPECT_TRUE(spool->Written(*c));
  EXPECT_FALSE(spool->Written(*b));  // a ticket of the failed write stays so
  auto all = spool->Read(1, 100, 1 << 20);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].payload, "after");
  EXPECT_EQ(spool->stats().pending_events, 2u);
}

// A sender that is behind reads one batch per call, in order, from where
// it stopped (the spool reads about a batch of the file, not the rest of
// the segment); a record larger than that is still read whole.
TEST_F(SpoolTest, ABacklogIsReadBatchByBatch) {
  auto spool = Open();
  for (int i = 1; i <= 5000; ++i) {
    ASSERT_TRUE(spool->Append(absl::StrCat("event-", i, std::string(100, '.'))).ok());
  }
  ASSERT_TRUE(spool->Append(std::string(3 << 20, 'L')).ok());  // 5001
  ASSERT_TRUE(spool->Append("after").ok());                     // 5002
  uint64_t from = 1;
  int calls = 0;
  std::vector<SpoolRecord> all;
  while (from <= 5002) {
    auto batch = spool->Read(from, 1000, 64 << 10);
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_FALSE(batch->empty());
    EXPECT_LE(batch->size(), 1000u);
    EXPECT_EQ(batch->front().sequence, from);
    from = batch->back().sequence + 1;
    for (auto& r : *batch) all.push_back(std::move(r));
    ASSERT_LT(++calls, 200);
  }
  ASSERT_EQ(all.size(), 5002u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].sequence, i + 1);
  EXPECT_EQ(all[4999].payload.substr(0, 11), "event-5000.");
  EXPECT_EQ(all[5000].payload.size(), 3u << 20);
  EXPECT_EQ(all[5001].payload, "after");
  EXPECT_GT(calls, 5);  // batches of about 64 KiB, not the whole backlog
  // And each byte is read about once, give or take one chunk (68 KiB) per
  // call: the whole backlog is some 3.7 MB; re-reading the rest of the
  // segment on every call read ten times that.
  const uint64_t appended = 5000 * 120 + (3u << 20) + 5;
  EXPECT_LT(spool->bytes_read(), appended + (calls + 1) * (72u << 10))
      << "read " << spool->bytes_read() << " bytes in " << calls << " calls";
  // Reading again from an earlier sequence (a resend) still works.
  auto again = spool->Read(10, 5, 1 << 20);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 5u);
  EXPECT_EQ(again->front().sequence, 10u);
}

TEST_F(SpoolTest, AcknowledgementsArePersistedAtSyncAndBeforeDeletion) {
  auto acked_file = [this]() -> std::string {
    std::ifstream in(dir_ + "/acked");
    std::string s;
    std::getline(in, s);
    return s;
  };
  SpoolOptions options;
  options.segment_bytes = 100;
  auto spool = Open(options);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(spool->Append("x").ok());
  ASSERT_TRUE(spool->Acknowledge(1).ok());
  EXPECT_EQ(acked_file(), "");  // not yet: one segment, nothing deleted
  EXPECT_EQ(spool->stats().acked, 1u);
  ASSERT_TRUE(spool->Sync().ok());
  EXPECT_EQ(acked_file(), "1");
  // Enough for several segments; acknowledging the first ones deletes
  // them, and "acked" is on disk first.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(spool->Append(std::string(20, 'a')).ok());
  }
  const size_t before = Segments().size();
  ASSERT_GT(before, 2u);
  ASSERT_TRUE(spool->Acknowledge(15).ok());
  EXPECT_LT(Segments().size(), before);
  EXPECT_EQ(acked_file(), "15");
  ASSERT_TRUE(spool->Acknowledge(16).ok());
  spool.reset();  // closing writes it
  EXPECT_EQ(acked_file(), "16");
  spool = Open(options);
  EXPECT_EQ(spool->stats().acked, 16u);
  EXPECT_EQ(spool->stats().next_sequence, 23u);
}

// The sender's syncer fsyncs the events every 20 ms but writes "acked"
// about once a second: Sync(false) syncs the records and leaves "acked"
// as it was, and the next Sync() (or closing) writes it.
TEST_F(SpoolTest, SyncWithoutAckedSyncsRecordsOnly) {
  auto acked_file = [this]() -> std::string {
    std::ifstream in(dir_ + "/acked");
    std::string s;
    std::getline(in, s);
    return s;
  };
  auto spool = Open();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(spool->Append("x").ok());
  ASSERT_TRUE(spool->Acknowledge(2).ok());
  ASSERT_TRUE(spool->Sync(/*persist_acked=*/false).ok());
  EXPECT_EQ(spool->stats().synced_through, 3u);
  EXPECT_EQ(acked_file(), "");
  ASSERT_TRUE(spool->Sync().ok());
  EXPECT_EQ(acked_file(), "2");
  ASSERT_TRUE(spool->Acknowledge(3).ok());
  ASSERT_TRUE(spool->Sync(/*persist_acked=*/false).ok());
  EXPECT_EQ(acked_file(), "2");
  spool.reset();  // closing writes it
  EXPECT_EQ(acked_file(), "3");
}

// ReadEach visits what Read returns, records written before a restart
// and by this process alike; staged, unwritten events are not visited.
TEST_F(SpoolTest, ReadEachVisitsWhatReadReturns) {
  using Records = std::vector<std::pair<uint64_t, std::string>>;
  auto each = [](Spool& spool, uint64_t from, size_t max_events,
                 size_t max_bytes) {
    Records out;
    size_t count = 0;
    EXPECT_TRUE(spool
                    .ReadEach(
                        from, max_events, max_bytes,
                        [&](uint64_t sequence, absl::string_view payload) {
                          out.emplace_back(sequence, std::string(payload));
                        },
                        &count)
                    .ok());
    EXPECT_EQ(count, out.size());
    return out;
  };
  auto read = [](Spool& spool, uint64_t from, size_t max_events,
                 size_t max_bytes) {
    Records out;
    auto records = spool.Read(from, max_events, max_bytes);
    EXPECT_TRUE(records.ok()) << records.status();
    if (records.ok()) {
      for (auto& r : *records) out.emplace_back(r.sequence, r.payload);
    }
    return out;
  };
  SpoolOptions options;
  {
    auto spool = Open(options);
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(spool->Append(absl::StrCat("before-restart-", i)).ok());
    }
  }
  auto spool = Open(options);
  for (int i = 4; i <= 6; ++i) {
    ASSERT_TRUE(spool->Append(absl::StrCat("event-", i)).ok());
  }
  const Records all = each(*spool, 1, 100, 1 << 20);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all, read(*spool, 1, 100, 1 << 20));
  EXPECT_EQ(all[0].second, "before-restart-1");
  EXPECT_EQ(all[5].second, "event-6");
  const Records mine = each(*spool, 4, 100, 1 << 20);
  EXPECT_EQ(mine, Records(all.begin() + 3, all.end()));
  EXPECT_EQ(each(*spool, 5, 1, 1 << 20), Records({all[4]}));
  EXPECT_EQ(each(*spool, 4, 100, 1), Records({all[3]}));  // at least one
  EXPECT_EQ(each(*spool, 7, 100, 1 << 20), Records());
  ASSERT_TRUE(spool->Acknowledge(4).ok());
  EXPECT_EQ(each(*spool, 5, 100, 1 << 20), Records(all.begin() + 4, all.end()));
  // Staged is not written: not visited until it is.
  ASSERT_TRUE(spool->Stage("staged-7").ok());
  EXPECT_EQ(each(*spool, 7, 100, 1 << 20), Records());
  ASSERT_TRUE(spool->WriteStaged().ok());
  EXPECT_EQ(each(*spool, 7, 100, 1 << 20), Records({{7, "staged-7"}}));
  for (int i = 8; i <= 20; ++i) {
    ASSERT_TRUE(spool->Append(absl::StrCat("overflowing-", i)).ok());
  }
  for (uint64_t from = 5; from <= 21; ++from) {
    EXPECT_EQ(each(*spool, from, 100, 1 << 20), read(*spool, from, 100, 1 << 20))
        << "from " << from;
    EXPECT_EQ(each(*spool, from, 3, 1 << 20), read(*spool, from, 3, 1 << 20))
        << "from " << from;
  }
  EXPECT_EQ(each(*spool, 20, 100, 1 << 20), Records({{20, "overflowing-20"}}));
  ASSERT_TRUE(spool->Acknowledge(20).ok());
  EXPECT_EQ(each(*spool, 21, 100, 1 << 20), Records());
  ASSERT_TRUE(spool->Append("after").ok());
  EXPECT_EQ(each(*spool, 21, 100, 1 << 20), Records({{21, "after"}}));
}

// A sender's loop: events written in batches of every size, read in
// parts, acknowledged wholly or in part, across segments: what ReadEach
// visits is always what Read returns.
TEST_F(SpoolTest, ReadEachFollowsASendersReadsAndAcknowledgements) {
  SpoolOptions options;
  options.segment_bytes = 4096;
  auto spool = Open(options);
  std::mt19937 random(7);
  uint64_t acked = 0;
  uint64_t written = 0;
  for (int round = 0; round < 400; ++round) {
    const int events = static_cast<int>(random() % 12);
    for (int i = 0; i < events; ++i) {
      ASSERT_TRUE(
          spool->Stage(std::string(1 + random() % 120, 'a' + i % 26)).ok());
    }
    ASSERT_TRUE(spool->WriteStaged().ok());
    written += events;
    const size_t max_events = 1 + random() % 20;
    std::vector<std::pair<uint64_t, std::string>> visited;
    size_t count = 0;
    ASSERT_TRUE(spool
                    ->ReadEach(acked + 1, max_events, 1 << 20,
                               [&](uint64_t sequence, absl::string_view p) {
                                 visited.emplace_back(sequence, std::string(p));
                               },
                               &count)
                    .ok());
    auto records = spool->Read(acked + 1, max_events, 1 << 20);
    ASSERT_TRUE(records.ok());
    ASSERT_EQ(visited.size(), records->size()) << "round " << round;
    for (size_t i = 0; i < visited.size(); ++i) {
      ASSERT_EQ(visited[i].first, (*records)[i].sequence);
      ASSERT_EQ(visited[i].second, (*records)[i].payload);
    }
    if (visited.empty()) continue;
    // All that was read, or part of it.
    const uint64_t last = visited.back().first;
    const uint64_t ack = random() % 3 == 0 ? acked + 1 + random() % (last - acked)
                                           : last;
    ASSERT_LE(ack, written);
    ASSERT_TRUE(spool->Acknowledge(ack).ok());
    acked = ack;
  }
}

TEST_F(SpoolTest, AcknowledgedSegmentsAreDeletedNeverUnacknowledgedOnes) {
  SpoolOptions options;
  options.segment_bytes = 100;  // about 3 records of 30 bytes each
  auto spool = Open(options);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(spool->Append(std::string(10, 'a' + i % 26)).ok());
  }
  const size_t before = Segments().size();
  ASSERT_GT(before, 4u);
  ASSERT_TRUE(spool->Acknowledge(10).ok());
  const size_t after = Segments().size();
  EXPECT_LT(after, before);
  // Every unacknowledged event is still there.
  auto rest = spool->Read(11, 100, 1 << 20);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 10u);
  EXPECT_EQ(rest->front().sequence, 11u);
  // Everything acknowledged: only the newest segment stays, and the
  // sequence continues after a restart.
  ASSERT_TRUE(spool->Acknowledge(20).ok());
  EXPECT_EQ(Segments().size(), 1u);
  EXPECT_EQ(spool->stats().pending_events, 0u);
  EXPECT_EQ(spool->stats().oldest_pending, absl::InfiniteFuture());
  spool.reset();
  std::filesystem::remove(Segments().front());  // even with no segment left
  spool = Open(options);
  EXPECT_EQ(spool->stats().next_sequence, 21u);
  auto seq = spool->Append("next");
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 21u);
}

TEST_F(SpoolTest, FullSpoolRefusesUntilAcknowledged) {
  SpoolOptions options;
  options.segment_bytes = 64;
  options.max_bytes = 256;
  auto spool = Open(options);
  int appended = 0;
  absl::Status refused;
  for (int i = 0; i < 100; ++i) {
    auto seq = spool->Append(std::string(20, 'x'));
    if (!seq.ok()) {
      refused = seq.status();
      break;
    }
    ++appended;
  }
  ASSERT_GT(appended, 0);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("is full"));
  EXPECT_THAT(refused.message(), HasSubstr("since sequence 1"));
  ASSERT_TRUE(spool->Acknowledge(appended).ok());
  EXPECT_TRUE(spool->Append(std::string(20, 'x')).ok());
}

// A spool smaller than the default segment (16 MiB) once filled its only
// segment, which is never deleted while it is the newest: every event was
// acknowledged and still every Append was refused, for good.
TEST_F(SpoolTest, SpoolSmallerThanASegmentKeepsTakingAcknowledgedEvents) {
  SpoolOptions options;  // default segment_bytes
  options.max_bytes = 4096;
  auto spool = Open(options);
  const std::string event(100, 'x');
  for (int i = 0; i < 1000; ++i) {  // 25 times the capacity
    auto seq = spool->Append(event);
    ASSERT_TRUE(seq.ok()) << "event " << i << ": " << seq.status();
    ASSERT_TRUE(spool->Acknowledge(*seq).ok());
  }
  EXPECT_LT(spool->Fill(), 0.5);
}

TEST_F(SpoolTest, FillIsTheUnacknowledgedShareOfTheCapacity) {
  SpoolOptions options;
  options.max_bytes = 4096;
  auto spool = Open(options);
  EXPECT_EQ(spool->Fill(), 0.0);
  int appended = 0;
  while (spool->Fill() <= 0.5) {
    ASSERT_TRUE(spool->Append(std::string(100, 'x')).ok());
    ++appended;
    ASSERT_LT(appended, 100);
  }
  EXPECT_GT(spool->stats().pending_bytes * 2, options.max_bytes);
  EXPECT_LE((spool->stats().pending_bytes - 116) * 2, options.max_bytes);
  ASSERT_TRUE(spool->Acknowledge(appended).ok());
  ASSERT_TRUE(spool->Append(std::string(100, 'x')).ok());  // a new segment
  ASSERT_TRUE(spool->Acknowledge(appended + 1).ok());
  EXPECT_LT(spool->Fill(), 0.5);
}

TEST_F(SpoolTest, TornTailIsCutAndWritingContinues) {
  {
    auto spool = Open();
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(spool->Append(absl::StrCat("e", i)).ok());
    }
  }
  // A crash in the middle of writing record 4: half a header and body.
  {
    std::ofstream out(Segments().back(), std::ios::binary | std::ios::app);
    out.write("\x30\x00\x00\x00\x12\x34", 6);
  }
  auto spool = Open();
  EXPECT_EQ(spool->stats().next_sequence, 4u);
  auto seq = spool->Append("e4");
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 4u);
  auto all = spool->Read(1, 10, 1 << 20);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ(all->back().payload, "e4");
}

TEST_F(SpoolTest, CorruptionBeforeTheTailRefusesToOpen) {
  SpoolOptions options;
  options.segment_bytes = 40;
  {
    auto spool = Open(options);
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(spool->Append("payload").ok());
  }
  const auto segments = Segments();
  ASSERT_GE(segments.size(), 2u);
  {
    std::fstream f(segments.front(),
                   std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(20);
    f.put('!');  // inside the first record's payload
  }
  auto spool = Spool::Open(dir_, options);
  ASSERT_FALSE(spool.ok());
  EXPECT_EQ(spool.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(spool.status().message(), HasSubstr(segments.front()));
  EXPECT_THAT(spool.status().message(), HasSubstr("checksum mismatch"));
}

TEST_F(SpoolTest, AcknowledgementsAreChecked) {
  auto spool = Open();
  ASSERT_TRUE(spool->Append("a").ok());
  ASSERT_TRUE(spool->Append("b").ok());
  EXPECT_EQ(spool->Acknowledge(3).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(spool->Acknowledge(2).ok());
  EXPECT_TRUE(spool->Acknowledge(1).ok());  // older: ignored
  EXPECT_EQ(spool->stats().acked, 2u);
  SpoolOptions small;
  small.max_record_bytes = 4;
  spool.reset();
  spool = Open(small);
  EXPECT_EQ(spool->Append("12345").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SpoolTest, ReadingOnInBatchesAndReadingAgainAgree) {
  SpoolOptions options;
  options.segment_bytes = 300;  // several segments
  auto spool = Open(options);
  for (int i = 1; i <= 50; ++i) {
    ASSERT_TRUE(spool->Append(absl::StrCat("event-", i)).ok());
  }
  // As the sender does: batches, each from where the last one stopped.
  uint64_t next = 1;
  std::vector<std::string> got;
  while (true) {
    auto batch = spool->Read(next, 7, 1 << 20);
    ASSERT_TRUE(batch.ok()) << batch.status();
    if (batch->empty()) break;
    for (const auto& r : *batch) {
      EXPECT_EQ(r.sequence, next);
      got.push_back(r.payload);
      ++next;
    }
  }
  ASSERT_EQ(got.size(), 50u);
  EXPECT_EQ(got[49], "event-50");
  // A resend from an earlier sequence (after a failure) starts over there.
  auto again = spool->Read(3, 2, 1 << 20);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0].payload, "event-3");
  // Skipping ahead works too.
  auto ahead = spool->Read(45, 100, 1 << 20);
  ASSERT_TRUE(ahead.ok());
  ASSERT_EQ(ahead->size(), 6u);
  EXPECT_EQ(ahead->front().sequence, 45u);
  // And reading on after more appends.
  ASSERT_TRUE(spool->Append("event-51").ok());
  auto more = spool->Read(51, 10, 1 << 20);
  ASSERT_TRUE(more.ok());
  ASSERT_EQ(more->size(), 1u);
  EXPECT_EQ(more->front().payload, "event-51");
}

TEST_F(SpoolTest, ConcurrentAppendsGetUniqueGapFreeSequences) {
  SpoolOptions options;
  options.segment_bytes = 4096;
  auto spool = Open(options);
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> threads;
  std::vector<std::vector<uint64_t>> got(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto seq = spool->Append(absl::StrCat("t", t, "-", i));
        ASSERT_TRUE(seq.ok());
        got[t].push_back(*seq);
        if (i % 50 == 0) ASSERT_TRUE(spool->Sync().ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> all;
  for (const auto& v : got) all.insert(v.begin(), v.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), static_cast<uint64_t>(kThreads * kEach));
  auto read = spool->Read(1, kThreads * kEach, 1 << 30);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < read->size(); ++i) {
    EXPECT_EQ((*read)[i].sequence, i + 1);
  }
}

}  // namespace
}  // namespace warden::dataplane::audit
