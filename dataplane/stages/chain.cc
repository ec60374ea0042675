#include "dataplane/stages/chain.h"

namespace warden::dataplane::stages {

StageResult Chain::OnFrontend(const Frontend& m) {
  Execution& execution = callbacks_->execution();
  size_t first = 0;
  bool resumed = false;
  if (held_.has_value()) {
    // Only the held message comes back here (the client is not read
    // meanwhile), once its stage resumed.
    first = *held_;
    resumed = resumed_;
    held_.reset();
    resumed_ = false;
  } else {
    const gate::Gate* gate = execution.gate;
    execution = Execution{};
    execution.gate = gate;
  }
  for (size_t i = first; i < stages_.size(); ++i) {
    const bool refused_before = execution.refusal.has_value();
    const StageResult r = stages_[i]->OnFrontend(m, resumed && i == first);
    if (callbacks_->ended()) return StageResult::kReplaced;
    if (r == StageResult::kHold) {
      held_ = i;
      return StageResult::kHold;
    }
    if (!refused_before && execution.refusal.has_value()) {
      for (size_t k = 0; k < i; ++k) {
        stages_[k]->OnRefusedLater(m, *execution.refusal);
      }
    }
  }
  return execution.refusal.has_value() ? StageResult::kReplaced
                                       : StageResult::kContinue;
}

void Chain::OnBackend(const Backend& m) {
  for (size_t i = stages_.size(); i-- > 0;) stages_[i]->OnBackend(m);
}

void Chain::OnCancel() {
  for (auto& stage : stages_) stage->OnCancel();
}

void Chain::OnPolicy(const gate::Gate& gate) {
  for (auto& stage : stages_) {
    stage->OnPolicy(gate);
    if (callbacks_->ended()) return;
  }
}

void Chain::OnEnd(absl::string_view why) {
  for (auto& stage : stages_) stage->OnEnd(why);
  held_.reset();
  resumed_ = false;
}

}  // namespace warden::dataplane::stages
