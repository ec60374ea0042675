// Chain: the stages of one session, in order, and where a held message
// waits (the cursor).
//
// Client to database, messages go through the stages in the order they
// were added; the first refusal wins, and the stages after it still see
// the message (the audit stage records the refusal), the stages before it
// are told (OnRefusedLater). Database to client, messages go through the
// stages in reverse order (masking, then recording results).
#ifndef WARDEN_DATAPLANE_STAGES_CHAIN_H_
#define WARDEN_DATAPLANE_STAGES_CHAIN_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "dataplane/stages/stage.h"

namespace warden::dataplane::stages {

class Chain {
 public:
  explicit Chain(StageCallbacks* callbacks) : callbacks_(callbacks) {}

  void Add(std::unique_ptr<Stage> stage) {
    stages_.push_back(std::move(stage));
  }
  bool empty() const { return stages_.empty(); }
  size_t size() const { return stages_.size(); }

  // Runs `m` through the stages: from the first (the execution reset), or,
  // after Resume() of a held message, from the stage that held it (the
  // execution kept). kHold: the caller keeps `m` and stops reading the
  // client until the stage resumes; kReplaced: the execution's refusal
  // says with what; kContinue: relay `m`. A stage that ended the session
  // (Fail) ends the run: later stages do not see the message.
  StageResult OnFrontend(const Frontend& m);

  // Backend messages, last stage first.
  void OnBackend(const Backend& m);
  // A CancelRequest of this session's client.
  void OnCancel();
  // A new policy is in force.
  void OnPolicy(const gate::Gate& gate);
  void OnEnd(absl::string_view why);

  // A stage holds the message at the head of the client's buffer.
  bool holding() const { return held_.has_value() && !resumed_; }
  // Resume() was called: the next OnFrontend starts at the held stage.
  void MarkResumed() {
    if (held_.has_value()) resumed_ = true;
  }

 private:
  StageCallbacks* callbacks_;
  std::vector<std::unique_ptr<Stage>> stages_;
  std::optional<size_t> held_;  // the stage holding the head message.
  bool resumed_ = false;
};

}  // namespace warden::dataplane::stages

#endif  // WARDEN_DATAPLANE_STAGES_CHAIN_H_
