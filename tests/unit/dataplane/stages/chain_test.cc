// The chain: order, the first refusal wins, a hold is a cursor.
#include "dataplane/stages/chain.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/dataplane/stages/fake_callbacks.h"

namespace warden::dataplane::stages {
namespace {

// A stage that does what the test says and logs what it saw.
class ScriptedStage : public Stage {
 public:
  ScriptedStage(std::string name, StageCallbacks* cb,
                std::vector<std::string>* log)
      : name_(std::move(name)), cb_(cb), log_(log) {}

  StageResult OnFrontend(const Frontend& m, bool resumed) override {
    log_->push_back(name_ + (resumed ? ":resumed:" : ":") +
                    std::string(m.body) +
                    (cb_->execution().refusal.has_value() ? ":refused" : ""));
    if (hold_next) {
      hold_next = false;
      return StageResult::kHold;
    }
    if (refuse) {
      cb_->Refuse("error-from-" + name_, false);
      return StageResult::kReplaced;
    }
    if (fail) {
      cb_->Fail("28000", "gone", warden::v1::SESSION_END_REASON_POLICY);
      return StageResult::kContinue;
    }
    if (set_text) cb_->execution().refused_portal_text = name_;
    return StageResult::kContinue;
  }
  void OnRefusedLater(const Frontend& m, const Refusal& r) override {
    log_->push_back(name_ + ":told:" + r.error);
  }
  void OnBackend(const Backend& m) override {
    log_->push_back(name_ + ":backend");
  }
  void OnEnd(absl::string_view why) override {
    log_->push_back(name_ + ":end:" + std::string(why));
  }

  bool hold_next = false;
  bool refuse = false;
  bool set_text = false;
  bool fail = false;

 private:
  std::string name_;
  StageCallbacks* cb_;
  std::vector<std::string>* log_;
};

struct ChainFixture : ::testing::Test {
  ChainFixture() : chain(&cb) {
    for (const char* name : {"a", "b", "c"}) {
      auto s = std::make_unique<ScriptedStage>(name, &cb, &log);
      stages.push_back(s.get());
      chain.Add(std::move(s));
    }
  }
  FakeCallbacks cb;
  std::vector<std::string> log;
  Chain chain;
  std::vector<ScriptedStage*> stages;
};

TEST_F(ChainFixture, FrontendInOrderBackendInReverse) {
  EXPECT_EQ(chain.OnFrontend({'Q', "m1"}), StageResult::kContinue);
  chain.OnBackend({'C', "x"});
  EXPECT_EQ(log, (std::vector<std::string>{"a:m1", "b:m1", "c:m1", "c:backend",
                                           "b:backend", "a:backend"}));
}

TEST_F(ChainFixture, FirstRefusalWinsLaterStagesSeeItEarlierOnesAreTold) {
  stages[1]->refuse = true;
  stages[2]->refuse = true;  // would refuse too: the first one counts
  EXPECT_EQ(chain.OnFrontend({'Q', "m1"}), StageResult::kReplaced);
  ASSERT_TRUE(cb.execution().refusal.has_value());
  EXPECT_EQ(cb.execution().refusal->error, "error-from-b");
  EXPECT_EQ(log, (std::vector<std::string>{"a:m1", "b:m1", "a:told:error-from-b",
                                           "c:m1:refused"}));
}

TEST_F(ChainFixture, EachMessageStartsWithAFreshExecutionButTheSameGate) {
  // Only compared, never used.
  const gate::Gate* gate = reinterpret_cast<const gate::Gate*>(&log);
  cb.execution().gate = gate;
  stages[0]->refuse = true;
  EXPECT_EQ(chain.OnFrontend({'Q', "m1"}), StageResult::kReplaced);
  stages[0]->refuse = false;
  EXPECT_EQ(chain.OnFrontend({'Q', "m2"}), StageResult::kContinue);
  EXPECT_FALSE(cb.execution().refusal.has_value());
  EXPECT_EQ(cb.execution().gate, gate);
}

TEST_F(ChainFixture, AHoldResumesAtTheHoldingStageWithTheExecutionKept) {
  stages[0]->set_text = true;  // what an earlier stage decided
  stages[1]->hold_next = true;
  EXPECT_EQ(chain.OnFrontend({'P', "held"}), StageResult::kHold);
  EXPECT_TRUE(chain.holding());
  EXPECT_EQ(log, (std::vector<std::string>{"a:held", "b:held"}));
  // Not resumed yet: the session keeps the message and reads nothing.
  chain.MarkResumed();
  EXPECT_FALSE(chain.holding());
  log.clear();
  EXPECT_EQ(chain.OnFrontend({'P', "held"}), StageResult::kContinue);
  // Stage a is not asked again; b knows it resumed; the execution is the
  // one from before the hold.
  EXPECT_EQ(log, (std::vector<std::string>{"b:resumed:held", "c:held"}));
  EXPECT_EQ(cb.execution().refused_portal_text, "a");
  // The next message starts at the first stage again, afresh.
  stages[0]->set_text = false;
  log.clear();
  EXPECT_EQ(chain.OnFrontend({'S', "next"}), StageResult::kContinue);
  EXPECT_EQ(log.front(), "a:next");
  EXPECT_EQ(cb.execution().refused_portal_text, "");
}

TEST_F(ChainFixture, ARefusalAfterAResumeIsToldToTheStagesBefore) {
  stages[1]->hold_next = true;
  ASSERT_EQ(chain.OnFrontend({'Q', "m"}), StageResult::kHold);
  chain.MarkResumed();
  stages[1]->refuse = true;  // e.g. the audit acknowledgement timed out
  log.clear();
  EXPECT_EQ(chain.OnFrontend({'Q', "m"}), StageResult::kReplaced);
  EXPECT_EQ(log, (std::vector<std::string>{"b:resumed:m", "a:told:error-from-b",
                                           "c:m:refused"}));
}

TEST_F(ChainFixture, AStageThatEndsTheSessionEndsTheRun) {
  stages[0]->fail = true;  // e.g. the directory: the user is deactivated
  EXPECT_EQ(chain.OnFrontend({'Q', "m"}), StageResult::kReplaced);
  // Nothing later judges or records a message that never runs.
  EXPECT_EQ(log, (std::vector<std::string>{"a:m"}));
}

TEST_F(ChainFixture, EndDropsTheHold) {
  stages[2]->hold_next = true;
  ASSERT_EQ(chain.OnFrontend({'Q', "m"}), StageResult::kHold);
  chain.OnEnd("client went away");
  EXPECT_FALSE(chain.holding());
  EXPECT_EQ(log.back(), "c:end:client went away");
  log.clear();
  EXPECT_EQ(chain.OnFrontend({'Q', "m2"}), StageResult::kContinue);
  EXPECT_EQ(log.front(), "a:m2");
}

}  // namespace
}  // namespace warden::dataplane::stages
