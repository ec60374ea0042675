#include "dataplane/stages/result_tracker.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace warden::dataplane::stages {
namespace {

Intent Recorded(uint64_t sequence) {
  auto summary = std::make_shared<warden::v1::Statement>();
  summary->add_command_tags("SELECT");
  return Intent{sequence, std::move(summary)};
}

const Intent kUnrecorded{};

class ResultTrackerTest : public ::testing::Test {
 protected:
  // A clock that moves a millisecond per reading.
  absl::Time Now() { return t0_ + absl::Milliseconds(ticks_++); }

  std::vector<Completion> out_;
  ResultTracker tracker_;
  absl::Time t0_ = absl::FromUnixSeconds(1'800'000'000);
  int ticks_ = 0;
};

TEST(RowsOfTagTest, ReadsTheCountOfEveryKindOfTag) {
  EXPECT_EQ(ResultTracker::RowsOfTag("SELECT 3"), 3);
  EXPECT_EQ(ResultTracker::RowsOfTag("INSERT 0 12"), 12);
  EXPECT_EQ(ResultTracker::RowsOfTag("UPDATE 0"), 0);
  EXPECT_EQ(ResultTracker::RowsOfTag("DELETE 70000000000"), 70000000000);
  EXPECT_EQ(ResultTracker::RowsOfTag("COPY 5"), 5);
  EXPECT_EQ(ResultTracker::RowsOfTag("MERGE 2"), 2);
  EXPECT_EQ(ResultTracker::RowsOfTag("CREATE TABLE"), -1);
  EXPECT_EQ(ResultTracker::RowsOfTag("BEGIN"), -1);
  EXPECT_EQ(ResultTracker::RowsOfTag("SHOW"), -1);
  EXPECT_EQ(ResultTracker::RowsOfTag("SELECT "), -1);
  EXPECT_EQ(ResultTracker::RowsOfTag("SELECT 1x"), -1);
  EXPECT_EQ(ResultTracker::RowsOfTag("SELECT 99999999999999999999999"), -1);
}

// The unnamed portal bound again (here for a refused statement, whose
// Bind is not recorded) while its first execution is still unanswered:
// the queued Execute is then the only owner of that execution, and its
// CommandComplete must still complete it (the proxy once read it after
// freeing it, and died, in this pipeline).
TEST_F(ResultTrackerTest, PortalReboundBeforeItsAnswerStillCompletes) {
  tracker_.Bind("", Recorded(8), Now(), &out_);
  tracker_.Execute("");
  tracker_.Bind("", kUnrecorded, Now(), &out_);
  tracker_.Execute("");
  tracker_.Sync();
  EXPECT_TRUE(out_.empty());
  tracker_.DataRow();
  tracker_.CommandComplete("SELECT 1", Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].intent.sequence, 8u);
  ASSERT_NE(out_[0].intent.summary, nullptr);
  EXPECT_EQ(out_[0].intent.summary->command_tags(0), "SELECT");
  EXPECT_EQ(out_[0].rows, 1);
  EXPECT_EQ(out_[0].sqlstate, "00000");
  tracker_.Error("42501", Now(), &out_);
  tracker_.ReadyForQuery(Now(), &out_);
  EXPECT_EQ(out_.size(), 1u);
  EXPECT_EQ(tracker_.pending(), 0u);
}

// Red team pass 11 (F2): executed through a longer name (PostgreSQL reads
// the first 63 bytes), the DELETE was recorded as never executed.
TEST_F(ResultTrackerTest, APortalExecutedByALongerNameIsTheSamePortal) {
  tracker_.Bind(std::string(63, 'p') + "E", Recorded(9), Now(), &out_);
  tracker_.Execute(std::string(63, 'p') + "B");
  tracker_.Sync();
  tracker_.CommandComplete("DELETE 3", Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].intent.sequence, 9u);
  EXPECT_EQ(out_[0].rows, 3);
  EXPECT_EQ(out_[0].sqlstate, "00000");
}

TEST_F(ResultTrackerTest, SimpleQueryReportsRowsDurationAndSuccess) {
  tracker_.Query(Recorded(4), Now());
  tracker_.DataRow();
  tracker_.DataRow();
  tracker_.CommandComplete("SELECT 2", Now(), &out_);
  EXPECT_TRUE(out_.empty()) << "a Query ends at ReadyForQuery";
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].intent.sequence, 4u);
  EXPECT_EQ(out_[0].rows, 2);
  EXPECT_EQ(out_[0].sqlstate, "00000");
  EXPECT_EQ(out_[0].duration, absl::Milliseconds(2));
  EXPECT_EQ(out_[0].note, "");
  EXPECT_EQ(tracker_.pending(), 0u);
}

TEST_F(ResultTrackerTest, MultiStatementQuerySumsRowsAndKeepsTheFirstError) {
  tracker_.Query(Recorded(1), Now());
  tracker_.CommandComplete("INSERT 0 3", Now(), &out_);
  tracker_.DataRow();  // SHOW has no count in its tag.
  tracker_.CommandComplete("SHOW", Now(), &out_);
  tracker_.Error("42P01", Now(), &out_);
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].rows, 4);
  EXPECT_EQ(out_[0].sqlstate, "42P01");
}

TEST_F(ResultTrackerTest, UnrecordedMessagesAreFollowedButNotReported) {
  // A refused Query (its poison fails upstream), then an allowed one.
  tracker_.Query(kUnrecorded, Now());
  tracker_.Query(Recorded(9), Now());
  tracker_.Error("42601", Now(), &out_);
  tracker_.ReadyForQuery(Now(), &out_);
  EXPECT_TRUE(out_.empty());
  tracker_.CommandComplete("DELETE 5", Now(), &out_);
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].intent.sequence, 9u);
  EXPECT_EQ(out_[0].rows, 5);
  EXPECT_EQ(out_[0].sqlstate, "00000") << "the refusal's error is not its";
}

TEST_F(ResultTrackerTest, PipelinedExecutionsPairWithTheirOwnAnswers) {
  // Bind/Execute the unnamed portal twice before any answer arrives.
  tracker_.Bind("", Recorded(5), Now(), &out_);
  tracker_.Execute("");
  tracker_.Bind("", Recorded(6), Now(), &out_);
  tracker_.Execute("");
  tracker_.Sync();
  EXPECT_TRUE(out_.empty());
  tracker_.DataRow();
  tracker_.CommandComplete("SELECT 1", Now(), &out_);
  tracker_.DataRow();
  tracker_.DataRow();
  tracker_.CommandComplete("UPDATE 2", Now(), &out_);
  ASSERT_EQ(out_.size(), 2u) << "an Execute completes at CommandComplete";
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].intent.sequence, 5u);
  EXPECT_EQ(out_[0].rows, 1);
  EXPECT_EQ(out_[1].intent.sequence, 6u);
  EXPECT_EQ(out_[1].rows, 2);
  EXPECT_EQ(out_[1].sqlstate, "00000");
}

TEST_F(ResultTrackerTest, AnErrorSkipsTheRestOfThePipelineUntilSync) {
  tracker_.Bind("", Recorded(7), Now(), &out_);
  tracker_.Execute("");
  tracker_.Bind("", Recorded(8), Now(), &out_);
  tracker_.Execute("");
  tracker_.Sync();
  tracker_.BindComplete();  // the first Bind's; its Execute fails.
  tracker_.Error("22012", Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].intent.sequence, 7u);
  EXPECT_EQ(out_[0].sqlstate, "22012");
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].intent.sequence, 8u);
  EXPECT_EQ(out_[1].sqlstate, "22012");
  EXPECT_NE(out_[1].note.find("not run"), std::string::npos) << out_[1].note;
  EXPECT_EQ(tracker_.pending(), 0u);
}

TEST_F(ResultTrackerTest, AnErrorOfAnEarlierBatchIsNotBlamedOnTheNext) {
  // Parse (fails) Sync | Bind Execute Sync, all sent at once.
  tracker_.Sync();
  tracker_.Bind("", Recorded(9), Now(), &out_);
  tracker_.Execute("");
  tracker_.Sync();
  tracker_.Error("42601", Now(), &out_);  // the Parse's.
  tracker_.ReadyForQuery(Now(), &out_);
  EXPECT_TRUE(out_.empty());
  tracker_.CommandComplete("UPDATE 3", Now(), &out_);
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].sqlstate, "00000");
  EXPECT_EQ(out_[0].rows, 3);
}

// Bind a, Bind b (PostgreSQL refuses its parameter: 22P02), Execute a,
// Execute b, Sync. The error answers b's Bind: b failed, and a, which
// PostgreSQL skipped, did not run (it used to take b's error as its own,
// and b was reported as skipped).
TEST_F(ResultTrackerTest, ABindThatFailsFailsItsOwnExecutionNotAnother) {
  tracker_.Parse();
  tracker_.Bind("a", Recorded(5), Now(), &out_);
  tracker_.Bind("b", Recorded(6), Now(), &out_);
  tracker_.Execute("a");
  tracker_.Execute("b");
  tracker_.Sync();
  tracker_.ParseComplete();
  tracker_.BindComplete();
  tracker_.Error("22P02", Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].intent.sequence, 6u);
  EXPECT_EQ(out_[0].sqlstate, "22P02");
  EXPECT_EQ(out_[0].note, "not run: its Bind failed");
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].intent.sequence, 5u);
  EXPECT_EQ(out_[1].sqlstate, "22P02");
  EXPECT_EQ(out_[1].note,
            "not run: an earlier message of its pipeline failed (22P02)");
  EXPECT_EQ(tracker_.pending(), 0u);
  // Nothing more is reported for either portal when it goes.
  tracker_.Close('P', "a", &out_);
  tracker_.Close('P', "b", &out_);
  tracker_.Sync();
  tracker_.CloseComplete();
  tracker_.CloseComplete();
  tracker_.ReadyForQuery(Now(), &out_);
  EXPECT_EQ(out_.size(), 2u);
  EXPECT_EQ(tracker_.pending(), 0u);
}

// A Parse that fails (42P01) in a batch that executes an earlier portal:
// the portal did not run, it did not fail.
TEST_F(ResultTrackerTest, AParseThatFailsIsNotBlamedOnAnExecution) {
  tracker_.Bind("a", Recorded(7), Now(), &out_);
  tracker_.Parse();
  tracker_.Execute("a");
  tracker_.Sync();
  tracker_.BindComplete();
  tracker_.Error("42P01", Now(), &out_);
  EXPECT_TRUE(out_.empty());
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].intent.sequence, 7u);
  EXPECT_NE(out_[0].note.find("not run"), std::string::npos) << out_[0].note;
}

// A Bind skipped after an earlier error in its batch, never executed: not
// run, said at the batch's end.
TEST_F(ResultTrackerTest, ABindSkippedAfterAnErrorDidNotRun) {
  tracker_.Bind("a", Recorded(8), Now(), &out_);
  tracker_.Bind("b", Recorded(9), Now(), &out_);
  tracker_.Sync();
  tracker_.Error("22P02", Now(), &out_);  // a's Bind
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].intent.sequence, 8u);
  EXPECT_EQ(out_[0].note, "not run: its Bind failed");
  EXPECT_EQ(out_[1].intent.sequence, 9u);
  EXPECT_NE(out_[1].note.find("not run: an earlier message"),
            std::string::npos);
}

// Describe and Close are answered in order too: an Execute's own error
// after a Describe is still its own.
TEST_F(ResultTrackerTest, DescribeAndCloseAnswersKeepThePairing) {
  tracker_.Parse();
  tracker_.Bind("", Recorded(10), Now(), &out_);
  tracker_.Describe();
  tracker_.Execute("");
  tracker_.Close('S', "s1", &out_);
  tracker_.Sync();
  tracker_.ParseComplete();
  tracker_.BindComplete();
  tracker_.Described('n', "");
  tracker_.DataRow();
  tracker_.CommandComplete("SELECT 1", Now(), &out_);
  tracker_.CloseComplete();
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].sqlstate, "00000");
  EXPECT_EQ(out_[0].rows, 1);
  tracker_.Parse();
  tracker_.Bind("", Recorded(11), Now(), &out_);
  tracker_.Describe();
  tracker_.Execute("");
  tracker_.Sync();
  tracker_.ParseComplete();
  tracker_.BindComplete();
  tracker_.Described('n', "");
  tracker_.Error("22012", Now(), &out_);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].intent.sequence, 11u);
  EXPECT_EQ(out_[1].sqlstate, "22012");
  EXPECT_EQ(out_[1].note, "");
  tracker_.ReadyForQuery(Now(), &out_);
  EXPECT_EQ(out_.size(), 2u);
  EXPECT_EQ(tracker_.pending(), 0u);
}

TEST_F(ResultTrackerTest, APortalFetchedInPartsIsOneExecution) {
  tracker_.Bind("c1", Recorded(10), Now(), &out_);
  tracker_.Execute("c1");
  tracker_.Sync();
  tracker_.DataRow();
  tracker_.DataRow();
  tracker_.PortalSuspended(Now(), &out_);
  tracker_.ReadyForQuery(Now(), &out_);
  EXPECT_TRUE(out_.empty()) << "still open: more rows may be fetched";
  tracker_.Execute("c1");
  tracker_.Sync();
  tracker_.DataRow();
  tracker_.CommandComplete("SELECT 1", Now(), &out_);
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].rows, 3);
  EXPECT_EQ(out_[0].sqlstate, "00000");
  EXPECT_EQ(out_[0].note, "");
}

TEST_F(ResultTrackerTest, ClosingAPartlyFetchedPortalCompletesIt) {
  tracker_.Bind("c1", Recorded(11), Now(), &out_);
  tracker_.Execute("c1");
  tracker_.Sync();
  tracker_.DataRow();
  tracker_.PortalSuspended(Now(), &out_);
  tracker_.ReadyForQuery(Now(), &out_);
  tracker_.Close('S', "c1", &out_);  // a statement of that name: not it.
  EXPECT_TRUE(out_.empty());
  tracker_.Close('P', "c1", &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].rows, 1);
  EXPECT_EQ(out_[0].sqlstate, "00000");
  EXPECT_NE(out_[0].note.find("closed before"), std::string::npos);
  EXPECT_EQ(tracker_.portals(), 0u);
}

TEST_F(ResultTrackerTest, ClosedWhileAnExecuteIsInFlightCompletesOnItsAnswer) {
  tracker_.Bind("c1", Recorded(12), Now(), &out_);
  tracker_.Execute("c1");
  tracker_.Close('P', "c1", &out_);
  tracker_.Sync();
  EXPECT_TRUE(out_.empty());
  tracker_.DataRow();
  tracker_.PortalSuspended(Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].rows, 1);
}

TEST_F(ResultTrackerTest, ABoundPortalNeverExecutedSaysSo) {
  tracker_.Bind("", Recorded(13), Now(), &out_);
  tracker_.Bind("", Recorded(14), Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].intent.sequence, 13u);
  EXPECT_EQ(out_[0].sqlstate, "");
  EXPECT_NE(out_[0].note.find("never executed"), std::string::npos);
}

TEST_F(ResultTrackerTest, FunctionCallAndEmptyQuery) {
  tracker_.FunctionCall(Recorded(15), Now());
  tracker_.ReadyForQuery(Now(), &out_);
  tracker_.Bind("", Recorded(16), Now(), &out_);
  tracker_.Execute("");
  tracker_.Sync();
  tracker_.EmptyQuery(Now(), &out_);
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].intent.sequence, 15u);
  EXPECT_EQ(out_[0].sqlstate, "00000");
  EXPECT_EQ(out_[1].intent.sequence, 16u);
  EXPECT_EQ(out_[1].rows, 0);
  EXPECT_EQ(out_[1].note, "empty query");
}

TEST_F(ResultTrackerTest, FinishReportsWhatNeverGotAnAnswer) {
  tracker_.Query(Recorded(17), Now());
  tracker_.Bind("c1", Recorded(18), Now(), &out_);
  tracker_.Execute("c1");
  tracker_.Sync();
  tracker_.Bind("c2", Recorded(19), Now(), &out_);
  tracker_.Finish("upstream closed the connection", Now(), &out_);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(out_[0].intent.sequence, 17u);
  EXPECT_EQ(out_[0].sqlstate, "");
  EXPECT_EQ(out_[0].note, "no answer: upstream closed the connection");
  EXPECT_EQ(out_[1].intent.sequence, 18u);
  EXPECT_EQ(out_[2].intent.sequence, 19u);
  EXPECT_NE(out_[2].note.find("never executed"), std::string::npos);
  EXPECT_EQ(tracker_.pending(), 0u);
  EXPECT_EQ(tracker_.portals(), 0u);
}

TEST_F(ResultTrackerTest, ManyNamedPortalsAreBoundedButStayPaired) {
  for (size_t i = 0; i < ResultTracker::kMaxPortals + 10; ++i) {
    tracker_.Bind("p" + std::to_string(i), Recorded(100 + i), Now(), &out_);
  }
  EXPECT_EQ(tracker_.portals(), ResultTracker::kMaxPortals);
  // One beyond the bound and one within it, executed in that order.
  tracker_.Execute("p" + std::to_string(ResultTracker::kMaxPortals + 5));
  tracker_.Execute("p0");
  tracker_.Sync();
  tracker_.CommandComplete("SELECT 7", Now(), &out_);
  tracker_.CommandComplete("SELECT 2", Now(), &out_);
  tracker_.ReadyForQuery(Now(), &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].intent.sequence, 100u);
  EXPECT_EQ(out_[0].rows, 2) << "the untracked Execute took its own answer";
}


// ---------------------------------------------------------------------------
// The execution record: which execution each answer belongs to, and what
// describes its rows (for the stages that read answers, e.g. masking).

// Message bodies as a client or PostgreSQL sends them.
std::string Cs(absl::string_view s) { return absl::StrCat(s, std::string(1, '\0')); }
std::string I16(int v) {
  return std::string{static_cast<char>((v >> 8) & 0xff),
                     static_cast<char>(v & 0xff)};
}
std::string BindBody(absl::string_view portal, absl::string_view statement,
                     std::vector<int> result_formats) {
  // One text parameter, "42".
  std::string body = Cs(portal) + Cs(statement) + I16(0) + I16(1);
  body += std::string{0, 0, 0, 2} + "42";
  body += I16(static_cast<int>(result_formats.size()));
  for (const int f : result_formats) body += I16(f);
  return body;
}

class ExecutionRecordTest : public ResultTrackerTest {
 protected:
  void Client(char type, absl::string_view body, Intent intent = {}) {
    tracker_.OnFrontend(type, body, std::move(intent), Now(), &out_);
  }
  // A backend message; returns the execution it answers.
  const ExecutionRecord* Server(char type, absl::string_view body = {}) {
    tracker_.OnBackend(type, body, Now(), &out_);
    return tracker_.answering();
  }
};

TEST_F(ExecutionRecordTest, AQuerysRowsAnswerItsStatementsDescription) {
  Client('Q', Cs("SELECT id FROM a; SELECT email FROM b"));
  const ExecutionRecord* described = Server('T', "columns of a");
  ASSERT_NE(described, nullptr);
  EXPECT_EQ(described->described, ExecutionRecord::Described::kQuery);
  EXPECT_EQ(*described->row_description, "columns of a");
  EXPECT_EQ(Server('D', "row"), described);
  EXPECT_EQ(Server('C', Cs("SELECT 1")), described);
  // The second statement's rows are described by its own RowDescription.
  EXPECT_EQ(Server('T', "columns of b"), described);
  EXPECT_EQ(*Server('D', "row")->row_description, "columns of b");
  EXPECT_EQ(Server('N', "a notice"), described);
  EXPECT_EQ(Server('C', Cs("SELECT 1")), described);
  EXPECT_EQ(Server('Z', "I"), nullptr);
  // Nobody recorded an intent for it: it completes without a report.
  EXPECT_TRUE(out_.empty());
}

TEST_F(ExecutionRecordTest, APortalsDescribeDescribesItsRowsWithTheirFormats) {
  Client('P', Cs("s1") + Cs("SELECT email FROM users WHERE id = $1") + I16(0));
  Client('B', BindBody("", "s1", {1}), Recorded(4));
  Client('D', "P" + Cs(""));
  Client('E', Cs("") + std::string(4, '\0'));
  Client('S', "");
  EXPECT_EQ(Server('1'), nullptr);
  EXPECT_EQ(Server('2'), nullptr);
  EXPECT_EQ(Server('T', "binary email column"), nullptr);
  const ExecutionRecord* row = Server('D', "a row");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->portal, "");
  EXPECT_EQ(row->statement, "s1");
  EXPECT_EQ(row->intent.sequence, 4u);
  EXPECT_EQ(row->result_formats, std::vector<int16_t>{1});
  EXPECT_EQ(row->described, ExecutionRecord::Described::kPortal);
  EXPECT_EQ(*row->row_description, "binary email column");
  EXPECT_EQ(Server('C', Cs("SELECT 1")), row);
  EXPECT_EQ(Server('Z', "I"), nullptr);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].intent.sequence, 4u);
}

// JDBC's first execution of a statement pipelines Parse, Describe of the
// statement, Bind and Execute: the Bind comes before the description, and
// is described by it once it arrives. Later Binds of it are described at
// once; all-text formats are said with none.
TEST_F(ExecutionRecordTest, AStatementsDescriptionDescribesItsPortals) {
  Client('P', Cs("S_1") + Cs("SELECT email FROM users") + I16(0));
  Client('D', "S" + Cs("S_1"));
  Client('B', BindBody("", "S_1", {0}));
  Client('E', Cs("") + std::string(4, '\0'));
  Client('S', "");
  Server('1');
  EXPECT_EQ(Server('t', std::string(2, '\0')), nullptr);
  Server('T', "email column");
  Server('2');
  const ExecutionRecord* row = Server('D', "a row");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->described, ExecutionRecord::Described::kStatement);
  EXPECT_EQ(*row->row_description, "email column");
  EXPECT_TRUE(row->result_formats.empty());
  Server('C', Cs("SELECT 1"));
  Server('Z', "I");
  EXPECT_EQ(tracker_.statements(), 1u);

  Client('B', BindBody("p2", "S_1", {}));
  ASSERT_NE(tracker_.Portal("p2"), nullptr);
  EXPECT_EQ(tracker_.Portal("p2")->described,
            ExecutionRecord::Described::kStatement);
  EXPECT_EQ(*tracker_.Portal("p2")->row_description, "email column");
}

// What can make a kept description name another statement forgets it: a
// Parse or Close of the name, SQL PREPARE and DEALLOCATE (same namespace).
TEST_F(ExecutionRecordTest, ANameThatMayNowBeAnotherStatementIsNotDescribed) {
  const auto describe = [this](absl::string_view name) {
    Client('P', Cs(name) + Cs("SELECT email FROM users") + I16(0));
    Client('D', "S" + Cs(name));
    Client('S', "");
    Server('1');
    Server('T', "email column");
    Server('Z', "I");
  };
  const auto bound = [this](absl::string_view name) {
    Client('B', BindBody("p", name, {}));
    Client('S', "");
    Server('2');
    Server('Z', "T");
    return tracker_.Portal("p")->described;
  };
  describe("a");
  EXPECT_EQ(bound("a"), ExecutionRecord::Described::kStatement);
  Client('C', "S" + Cs("a"));
  Client('S', "");
  Server('3');
  Server('Z', "T");
  EXPECT_EQ(bound("a"), ExecutionRecord::Described::kNo);

  describe("b");
  Client('P', Cs("b") + Cs("SELECT ssn FROM users") + I16(0));
  EXPECT_EQ(bound("b"), ExecutionRecord::Described::kNo);

  for (const char* tag : {"DEALLOCATE", "DEALLOCATE ALL", "PREPARE"}) {
    describe("c");
    EXPECT_EQ(bound("c"), ExecutionRecord::Described::kStatement);
    Client('Q', Cs("DEALLOCATE c; PREPARE c AS SELECT ssn FROM users"));
    Server('C', Cs(tag));
    Server('Z', "I");
    EXPECT_EQ(bound("c"), ExecutionRecord::Described::kNo) << tag;
  }
}

// A statement's Describe answer is not taken for a name that may have
// changed hands since the Describe was sent: a portal bound from the
// name's earlier statement stays undescribed, and an answer that crossed
// a new Parse of the name is not kept for it.
TEST_F(ExecutionRecordTest, ADescribeAnswerIsNotTakenAcrossANameChange) {
  // p1 is bound from s1's first statement, never described.
  Client('P', Cs("s1") + Cs("SELECT id FROM users") + I16(0));
  Client('B', BindBody("p1", "s1", {}));
  Client('S', "");
  Server('1');
  Server('2');
  Server('Z', "T");
  // s1 is closed and prepared again as another statement, then described.
  Client('C', "S" + Cs("s1"));
  Client('P', Cs("s1") + Cs("SELECT ssn FROM users") + I16(0));
  Client('D', "S" + Cs("s1"));
  Client('S', "");
  Server('3');
  Server('1');
  Server('T', "ssn column");
  Server('Z', "T");
  EXPECT_EQ(tracker_.Portal("p1")->described,
            ExecutionRecord::Described::kNo);
  EXPECT_EQ(tracker_.statements(), 1u);

  // A Describe sent before a new Parse of the name: its answer is the
  // old statement's, and is not kept for the new one.
  Client('D', "S" + Cs("s1"));
  Client('C', "S" + Cs("s1"));
  Client('P', Cs("s1") + Cs("SELECT email FROM users") + I16(0));
  Client('S', "");
  Server('T', "ssn column");
  Server('3');
  Server('1');
  Server('Z', "T");
  EXPECT_EQ(tracker_.statements(), 0u);
  Client('B', BindBody("p2", "s1", {}));
  EXPECT_EQ(tracker_.Portal("p2")->described,
            ExecutionRecord::Described::kNo);
}

// A notice or a COPY message belongs to the execution at the head without
// passing over a one-message answer still to come; an error that fails a
// Bind answers that Bind's execution.
TEST_F(ExecutionRecordTest, NoticesAndBindErrorsAnswerTheRightExecution) {
  Client('P', Cs("") + Cs("COPY users TO STDOUT") + I16(0));
  Client('B', BindBody("", "", {}), Recorded(6));
  Client('E', Cs("") + std::string(4, '\0'));
  Client('S', "");
  const ExecutionRecord* copy = Server('N', "a notice before ParseComplete");
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->intent.sequence, 6u);
  EXPECT_EQ(Server('1'), nullptr);
  EXPECT_EQ(Server('2'), nullptr);
  EXPECT_EQ(Server('H', std::string(3, '\0')), copy);
  EXPECT_EQ(Server('d', "1\talice@example.com\n"), copy);
  EXPECT_EQ(Server('c'), copy);
  EXPECT_EQ(Server('C', Cs("COPY 1")), copy);
  Server('Z', "I");
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].rows, 1);

  Client('B', BindBody("", "", {}), Recorded(7));
  const ExecutionRecord* bound = tracker_.Portal("");
  Client('E', Cs("") + std::string(4, '\0'));
  Client('S', "");
  const ExecutionRecord* failed =
      Server('E', "S" + Cs("ERROR") + "C" + Cs("22P02") + std::string(1, '\0'));
  EXPECT_EQ(failed, bound);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].intent.sequence, 7u);
  EXPECT_EQ(out_[1].sqlstate, "22P02");
}

// Unrecorded executions are followed too (masking applies with audit off).
TEST_F(ExecutionRecordTest, ExecutionsWithoutAnIntentAreFollowed) {
  Client('B', BindBody("cur", "", {}));
  ASSERT_NE(tracker_.Portal("cur"), nullptr);
  EXPECT_EQ(tracker_.Portal("cur")->intent.sequence, 0u);
  Client('E', Cs("cur") + std::string(4, '\0'));
  Client('S', "");
  Server('2');
  EXPECT_EQ(Server('D', "row"), tracker_.Portal("cur"));
  Server('s');
  Server('Z', "T");
  EXPECT_TRUE(out_.empty());
}
}  // namespace
}  // namespace warden::dataplane::stages
