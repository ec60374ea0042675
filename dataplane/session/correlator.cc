#include "dataplane/session/correlator.h"

#include <utility>

#include "dataplane/pgwire/messages.h"

namespace warden::dataplane::session {
namespace {

// The portal an Execute, Describe('P') or Close('P') names.
std::optional<absl::string_view> PortalUsed(char type, absl::string_view body) {
  switch (static_cast<pgwire::FrontendType>(type)) {
    case pgwire::FrontendType::kExecute:
      return pgwire::ObjectName(body.substr(0, body.find('\0')));
    case pgwire::FrontendType::kDescribe:
    case pgwire::FrontendType::kClose:
      if (body.empty() || body[0] != 'P') return std::nullopt;
      return pgwire::ObjectName(body.substr(1, body.find('\0', 1) - 1));
    default:
      return std::nullopt;
  }
}

}  // namespace

std::optional<std::string> Correlator::UnsafePortal(char type,
                                                    absl::string_view body) {
  // Execute, Describe and Close of a portal are passed on only when its
  // Bind is in the same batch (PostgreSQL skips them after an error) or in
  // a finished batch without an error. Drivers bind and execute in the
  // same batch, or fetch from a portal whose Bind has completed.
  switch (static_cast<pgwire::FrontendType>(type)) {
    case pgwire::FrontendType::kQuery:
      NoteOrigin("", /*tainted=*/true);
      return std::nullopt;
    case pgwire::FrontendType::kBind:
      // Validated: the portal name is terminated.
      NoteOrigin(std::string(pgwire::ObjectName(body.substr(0, body.find('\0')))),
                 false);
      return std::nullopt;
    default:
      break;
  }
  const auto portal = PortalUsed(type, body);
  if (!portal.has_value() || PortalSafe(*portal)) return std::nullopt;
  return std::string(*portal);
}

void Correlator::NoteOrigin(const std::string& portal, bool tainted) {
  if (portal_origins_.size() >= kMaxPortals &&
      portal_origins_.find(portal) == portal_origins_.end()) {
    // Forgetting makes those portals unknown, which are passed on (a SQL
    // cursor is one): only a client with thousands of open portals in one
    // transaction gets here.
    portal_origins_.clear();
  }
  portal_origins_[portal] = PortalOrigin{pipeline_.syncs_sent, tainted};
}

bool Correlator::PortalSafe(absl::string_view name) const {
  const auto it = portal_origins_.find(name);
  if (it == portal_origins_.end()) return true;  // a cursor, or none at all
  if (it->second.tainted) return false;
  // Bound in this batch: after an error PostgreSQL skips the message.
  if (it->second.batch == pipeline_.syncs_sent) return true;
  // Bound in a batch that finished without an error.
  return it->second.batch < pipeline_.syncs_done;
}

void Correlator::Relayed(char type, absl::string_view body,
                         stages::Intent intent, absl::Time now) {
  results_.OnFrontend(type, body, std::move(intent), now, &completions_);
  auto open_batch = [this]() -> UnansweredBatch& {
    if (unanswered_batches_.empty() || unanswered_batches_.back().closed) {
      unanswered_batches_.emplace_back();
    }
    return unanswered_batches_.back();
  };
  // A Query, FunctionCall or Sync ends a batch; its ReadyForQuery will
  // answer it.
  auto end_batch = [this] {
    ++pipeline_.pending_syncs;
    ++pipeline_.syncs_sent;
    pipeline_.unsynced = false;
    pipeline_.executed_unsynced = false;
  };
  switch (static_cast<pgwire::FrontendType>(type)) {
    case pgwire::FrontendType::kQuery:
    case pgwire::FrontendType::kFunctionCall: {
      UnansweredBatch b;
      b.unanswered = 1;
      b.simple = true;
      b.closed = true;
      unanswered_batches_.push_back(b);
      ++unanswered_;
      end_batch();
      break;
    }
    case pgwire::FrontendType::kSync:
      open_batch().closed = true;
      end_batch();
      extended_since_sync_ = false;
      break;
    case pgwire::FrontendType::kExecute: {
      UnansweredBatch& b = open_batch();
      if (!b.failed) {
        ++b.unanswered;
        ++unanswered_;
      }
      pipeline_.unsynced = true;
      pipeline_.executed_unsynced = true;
      extended_since_sync_ = true;
      break;
    }
    case pgwire::FrontendType::kParse:
    case pgwire::FrontendType::kBind:
    case pgwire::FrontendType::kDescribe:
    case pgwire::FrontendType::kClose:
      pipeline_.unsynced = true;
      extended_since_sync_ = true;
      break;
    case pgwire::FrontendType::kTerminate:
      break;
    default:  // Flush, CopyData, ...
      pipeline_.unsynced = true;
      break;
  }
}

void Correlator::Answered() {
  if (unanswered_batches_.empty()) return;
  UnansweredBatch& b = unanswered_batches_.front();
  if (b.simple || b.unanswered == 0) return;
  --b.unanswered;
  --unanswered_;
  NoteAnswers();
}

void Correlator::Failed() {
  batch_had_error_ = true;
  if (unanswered_batches_.empty()) return;
  UnansweredBatch& b = unanswered_batches_.front();
  if (b.simple) return;  // a Query's later statements do not run; 'Z' ends it
  unanswered_ -= b.unanswered;
  b.unanswered = 0;
  b.failed = true;
  NoteAnswers();
}

void Correlator::Ready(bool idle) {
  ++pipeline_.syncs_done;
  if (!unanswered_batches_.empty()) {
    unanswered_ -= unanswered_batches_.front().unanswered;
    unanswered_batches_.pop_front();
    NoteAnswers();
  }
  if (!portal_origins_.empty()) {
    // The batch whose ReadyForQuery just came; an error since the one
    // before means it failed.
    const uint64_t finished = pipeline_.syncs_done - 1;
    for (auto it = portal_origins_.begin(); it != portal_origins_.end();) {
      if (it->second.batch <= finished) {
        if (idle) {  // the transaction ended, and its portals with it
          portal_origins_.erase(it++);
          continue;
        }
        if (batch_had_error_ && it->second.batch == finished) {
          it->second.tainted = true;
        }
      }
      ++it;
    }
  }
  batch_had_error_ = false;
  if (pipeline_.pending_syncs > 0) --pipeline_.pending_syncs;
}

void Correlator::NoteAnswers() {
  if (paused_ && unanswered_ <= kResumeUnanswered) resume_ = true;
}

bool Correlator::MayRead() {
  if (unanswered_ < kMaxUnanswered) return true;
  paused_ = true;  // resumed by answers
  return false;
}

bool Correlator::TakeResume() {
  if (!resume_) return false;
  resume_ = false;
  paused_ = false;
  return true;
}

}  // namespace warden::dataplane::session
