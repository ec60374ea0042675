// dataplane/session/refusals: substitutes, and the poison's error back to
// the refusal.
#include "dataplane/session/refusals.h"

#include <string>

#include "dataplane/pgwire/encoder.h"
#include "dataplane/pgwire/framing.h"
#include "dataplane/pgwire/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden::dataplane::session {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// PostgreSQL's error about a statement or portal called `name`.
pgwire::ErrorResponse ErrorAbout(const std::string& text, std::string* keep) {
  keep->clear();
  pgwire::WriteErrorResponse(keep, "ERROR", "26000", text);
  const pgwire::Frame f = pgwire::NextMessage(*keep, 1 << 20);
  auto parsed = pgwire::ParseErrorResponse(f.body);
  EXPECT_TRUE(parsed.ok());
  return *parsed;
}

pgwire::Frame Only(const std::string& bytes) {
  const pgwire::Frame f = pgwire::NextMessage(bytes, 1 << 20);
  EXPECT_EQ(f.status, pgwire::FrameStatus::kMessage);
  EXPECT_EQ(f.size, bytes.size()) << "one message";
  return f;
}

TEST(RefusalsTest, EachSubstituteKeepsWhatTheClientWaitsForAndQueuesOnce) {
  Refusals refusals("tok");
  std::string parse, bind, query, execute, describe;
  pgwire::WriteParse(&parse, "stmt1", "DELETE FROM t");
  pgwire::WriteBind(&bind, "portal1", "stmt1");
  pgwire::WriteQuery(&query, "DROP TABLE t");
  pgwire::WriteExecute(&execute, "portal1");
  pgwire::WriteDescribe(&describe, 'S', "stmt1");
  for (const std::string* msg : {&parse, &bind, &query, &execute, &describe}) {
    const pgwire::Frame in = Only(*msg);
    std::string out;
    const size_t before = refusals.size();
    refusals.WriteSubstitute(in.type, in.body, "the refusal", 1, &out);
    // One refusal per message: a Bind queued two before (issue 16).
    EXPECT_EQ(refusals.size(), before + 1) << in.type;
    const pgwire::Frame sub = Only(out);
    EXPECT_EQ(sub.type, in.type);
    switch (static_cast<pgwire::FrontendType>(in.type)) {
      case pgwire::FrontendType::kParse: {
        auto p = pgwire::ParseParse(sub.body);
        ASSERT_TRUE(p.ok());
        EXPECT_EQ(p->statement, "stmt1");
        EXPECT_THAT(std::string(p->query),
                    StartsWith("/* refused by Warden policy */ warden_refusal_"));
        break;
      }
      case pgwire::FrontendType::kBind: {
        auto b = pgwire::ParseBind(sub.body);
        ASSERT_TRUE(b.ok());
        EXPECT_EQ(b->portal, "portal1");
        EXPECT_THAT(std::string(b->statement), StartsWith("warden_refusal_"));
        break;
      }
      case pgwire::FrontendType::kQuery: {
        auto q = pgwire::ParseQuery(sub.body);
        ASSERT_TRUE(q.ok());
        EXPECT_THAT(std::string(q->sql), HasSubstr("warden_refusal_"));
        EXPECT_THAT(std::string(q->sql), ::testing::Not(HasSubstr("DROP")));
        break;
      }
      case pgwire::FrontendType::kExecute: {
        auto e = pgwire::ParseExecute(sub.body);
        ASSERT_TRUE(e.ok());
        EXPECT_THAT(std::string(e->portal), StartsWith("warden_refusal_"));
        break;
      }
      default: {
        auto d = pgwire::ParseDescribe(sub.body);
        ASSERT_TRUE(d.ok());
        EXPECT_THAT(std::string(d->name), StartsWith("warden_refusal_"));
        break;
      }
    }
  }
}

TEST(RefusalsTest, OnlyThePoisonsOwnErrorIsTaken) {
  Refusals refusals;
  const std::string first = refusals.Queue("refusal 1", 1);
  const std::string second = refusals.Queue("refusal 2", 1, /*parse=*/true);
  EXPECT_NE(first, second);
  std::string keep;
  // An error the client provoked that names a made-up tag is no refusal.
  EXPECT_FALSE(refusals
                   .Take(ErrorAbout(
                       "prepared statement \"warden_refusal_0123abcd\" does "
                       "not exist",
                       &keep))
                   .has_value());
  EXPECT_FALSE(refusals.Take(ErrorAbout("division by zero", &keep)).has_value());
  auto taken = refusals.Take(ErrorAbout(
      "syntax error at or near \"" + second + "\"", &keep));
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->error, "refusal 2");
  EXPECT_TRUE(taken->parse);
  EXPECT_FALSE(refusals
                   .Take(ErrorAbout("syntax error at or near \"" + second + "\"",
                                    &keep))
                   .has_value())
      << "taken once";
  taken = refusals.Take(ErrorAbout(
      "prepared statement \"" + first + "\" does not exist", &keep));
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->error, "refusal 1");
  EXPECT_FALSE(taken->parse);
  EXPECT_TRUE(refusals.empty());
}

TEST(RefusalsTest, PoisonsPostgresSkippedAreDroppedWhenTheirBatchEnds) {
  Refusals refusals;
  refusals.Queue("batch 1", 1);
  refusals.Queue("batch 2", 2);
  const std::string third = refusals.Queue("batch 2 again", 2);
  refusals.DropDone(1);
  EXPECT_EQ(refusals.size(), 2);
  std::string keep;
  EXPECT_TRUE(refusals
                  .Take(ErrorAbout("portal \"" + third + "\" does not exist",
                                   &keep))
                  .has_value());
  refusals.DropDone(2);
  EXPECT_TRUE(refusals.empty());
}

}  // namespace
}  // namespace warden::dataplane::session
