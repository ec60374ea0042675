// Fake StageCallbacks for the stages' unit tests: records what a stage
// asked of its session, and lets the test set the pipeline and facts.
#ifndef WARDEN_TESTS_UNIT_DATAPLANE_STAGES_FAKE_CALLBACKS_H_
#define WARDEN_TESTS_UNIT_DATAPLANE_STAGES_FAKE_CALLBACKS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "dataplane/net/event_loop.h"
#include "dataplane/stages/stage.h"

namespace warden::dataplane::stages {

class FakeCallbacks : public StageCallbacks {
 public:
  FakeCallbacks() {
    facts_.subject = &subject;
    facts_.environment = "prod";
    facts_.database = "shop";
    facts_.peer_address = "127.0.0.1:5555";
    subject.user = "alice";
    subject.groups = {"eng"};
    subject.kind = "human";
    loop_init = loop_.Init();
  }

  Execution& execution() override { return execution_; }
  const Pipeline& pipeline() const override { return pipeline_; }
  const SessionFacts& facts() const override { return facts_; }
  void Refuse(std::string error, bool parse) override {
    ++refusals;
    if (execution_.refusal.has_value()) return;
    execution_.refusal = Refusal{std::move(error), parse};
  }
  void SendToClient(absl::string_view bytes) override {
    sent.append(bytes.data(), bytes.size());
  }
  void Resume() override { ++resumes; }
  void Fail(absl::string_view sqlstate, absl::string_view message,
            warden::v1::SessionEndReason) override {
    failed_sqlstate = std::string(sqlstate);
    failed_message = std::string(message);
  }
  bool ended() const override { return !failed_sqlstate.empty(); }
  net::EventLoop& loop() override { return loop_; }
  absl::Time Now() override { return now; }
  std::vector<Completion>* completions() override { return &completed; }
  const ExecutionRecord* answering() const override { return answering_; }

  Execution execution_;
  Pipeline pipeline_;
  policy::engine::Subject subject;
  int refusals = 0;
  int resumes = 0;
  std::string sent;
  std::string failed_sqlstate;
  std::string failed_message;
  absl::Time now = absl::FromUnixSeconds(1700000000);
  // What the session's correlator completed (the tests put them here).
  std::vector<Completion> completed;
  // What answering() returns (the tests set it).
  const ExecutionRecord* answering_ = nullptr;
  absl::Status loop_init;

 private:
  SessionFacts facts_;
  net::EventLoop loop_;
};

}  // namespace warden::dataplane::stages

#endif  // WARDEN_TESTS_UNIT_DATAPLANE_STAGES_FAKE_CALLBACKS_H_
