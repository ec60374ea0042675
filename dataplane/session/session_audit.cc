#include "dataplane/session/session_audit.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/audit_bounds.h"
#include "common/proto_time.h"
#include "dataplane/pgwire/framing.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::session {
namespace {

// What makes a statement's record large: its text and parameters.
size_t ApproximateBytes(const warden::v1::Statement& st) {
  size_t bytes = st.text().size() + st.normalized_text().size();
  for (const std::string& p : st.parameters()) bytes += p.size();
  return bytes;
}

}  // namespace

warden::v1::AuditEvent SessionAudit::NewEvent(
    warden::v1::AuditEventKind kind) const {
  warden::v1::AuditEvent event;
  event.set_kind(kind);
  // Once the chain runs, who and where are encoded once per identity
  // (SharedEventFields) and Record adds them.
  if (chain_built_) return event;
  AddSharedFields(&event);
  return event;
}

void SessionAudit::AddSharedFields(warden::v1::AuditEvent* event) const {
  // The listener's: a proxy may serve several environments (the control
  // plane checks that its certificate names this one).
  event->set_environment(context_.environment);
  event->set_session_id(context_.session_id);
  *event->mutable_identity() = *context_.identity;
}

const std::string* SessionAudit::SharedEventFields() {
  // The directory stage is the only one that changes the identity once
  // the chain runs.
  const uint64_t version =
      identity_changes_ ? identity_changes_() : 0;
  if (!shared_fields_built_ || version != shared_fields_version_) {
    warden::v1::AuditEvent shared;
    AddSharedFields(&shared);
    shared_fields_ = audit::EncodeShared(shared);
    shared_fields_version_ = version;
    shared_fields_built_ = true;
  }
  return shared_fields_.has_value() ? &*shared_fields_ : nullptr;
}

absl::StatusOr<uint64_t> SessionAudit::Record(warden::v1::AuditEvent* event) {
  // (A small record up to half full is not sized: one atomic read.)
  if (event->kind() == warden::v1::AUDIT_EVENT_KIND_STATEMENT &&
      event->statement().phase() == warden::v1::STATEMENT_PHASE_INTENT &&
      context_.backlogged_session_rate > 0 &&
      (context_.recorder->Fill() > 0.5 ||
       ApproximateBytes(event->statement()) > kUnpricedBytes)) {
    const size_t bytes = event->ByteSizeLong();
    const size_t unpaid = bytes > prepaid_bytes_ ? bytes - prepaid_bytes_ : 0;
    prepaid_bytes_ = 0;
    if (unpaid > kUnpricedBytes && Check(unpaid, absl::Now()).has_value()) {
      warden::v1::Statement* st = event->mutable_statement();
      if (st->decision() == warden::v1::POLICY_ACTION_ALLOW ||
          st->decision() == warden::v1::POLICY_ACTION_UNSPECIFIED) {
        return absl::UnavailableError(absl::StrCat(
            "Warden: the audit spool is backlogged (the control plane is "
            "behind) and this identity's audit budget does not cover this "
            "statement's ",
            bytes, "-byte record now; it was not run"));
      }
      // Refused by policy: it does not run either way, and the attempt
      // stays in the trail (red team: such DENY records went unrecorded),
      // without what makes it large.
      st->clear_text();
      st->clear_normalized_text();
      st->clear_parameters();
      st->clear_tables();
      st->clear_columns();
      st->set_reason(absl::StrCat(
          st->reason(), st->reason().empty() ? "" : "; ",
          "text, tables and columns not recorded: the audit spool was "
          "backlogged and this identity's budget did not cover the ",
          bytes, "-byte record"));
    }
  }
  size_t size = 0;
  const std::string* shared = chain_built_ ? SharedEventFields() : nullptr;
  if (shared == nullptr && chain_built_) AddSharedFields(event);
  // Staged: written with every other event of this worker's batch, before
  // anything this session sends upstream from now on (write_pending()).
  absl::StatusOr<uint64_t> recorded = context_.recorder->Stage(
      shared != nullptr ? *shared : "", event, &size);
  if (recorded.ok() && !write_pending_) {
    write_pending_ = true;
    callbacks_->AwaitAuditWrite();
  }
  CountAudit(*window_, size, context_.backlogged_session_rate,
             context_.recorder->Fill(), absl::Now());
  return recorded;
}

bool SessionAudit::Audit(warden::v1::AuditEvent event) {
  if (context_.recorder == nullptr) return true;
  auto recorded = Record(&event);
  if (!recorded.ok()) {
    spdlog::error("session {}: audit event not recorded: {}",
                  context_.peer_address, recorded.status().ToString());
    return false;
  }
  return true;
}

std::optional<Throttle> SessionAudit::Check(size_t next_bytes,
                                            absl::Time now) {
  const int64_t rate = context_.backlogged_session_rate;
  if (rate <= 0 || context_.recorder == nullptr) return std::nullopt;
  // Up to half full, no limit (an atomic read; the identity's window,
  // shared with its other sessions, is locked only past that). The fill
  // is the one the next message would leave.
  double fill = context_.recorder->Fill();
  if (next_bytes > 0) {
    if (const uint64_t capacity = context_.recorder->CapacityBytes()) {
      fill += static_cast<double>(next_bytes) / static_cast<double>(capacity);
    }
  }
  if (fill <= 0.5) return std::nullopt;
  return AuditThrottle(*window_, rate, fill, now, next_bytes);
}

std::optional<absl::Duration> SessionAudit::Wait() {
  const absl::Time now = absl::Now();
  const std::optional<Throttle> throttle = Check(0, now);
  if (!throttle.has_value()) return std::nullopt;
  return std::max(absl::Milliseconds(1), throttle->until - now);
}

size_t SessionAudit::RecordedBytes(absl::string_view next) {
  if (next.empty() || (next[0] != 'Q' && next[0] != 'P')) return 0;
  // (No bound here: FrontendRelay refuses an oversized message.)
  const pgwire::Frame frame =
      pgwire::NextMessage(next, std::numeric_limits<size_t>::max());
  // kNeedMore says the whole size once the length is read; 0 before.
  if (frame.status == pgwire::FrameStatus::kError || frame.size <= 5) return 0;
  return std::min<size_t>(frame.size - 5, audit_bounds::Limits().max_event);
}

void SessionAudit::RecordEnd(warden::v1::SessionEndReason reason,
                             absl::string_view why, uint64_t statements,
                             absl::Duration lasted) {
  warden::v1::AuditEvent event =
      NewEvent(warden::v1::AUDIT_EVENT_KIND_SESSION_END);
  auto* end = event.mutable_session_end();
  end->set_reason(reason);
  end->set_detail(std::string(why));
  end->set_statements(statements);
  SetDuration(lasted, end->mutable_duration());
  Audit(std::move(event));
}

bool SessionAudit::Throttled(size_t next_bytes) {
  const absl::Time now = absl::Now();
  const std::optional<Throttle> throttle = Check(next_bytes, now);
  if (!throttle.has_value()) {
    prepaid_bytes_ = next_bytes;
    return false;
  }
  const double fill = context_.recorder->Fill();
  throttled_ = true;
  if (context_.sessions_throttled != nullptr) {
    context_.sessions_throttled->fetch_add(1, std::memory_order_relaxed);
  }
  spdlog::debug(
      "session {}: {} audit events ({} bytes) with the spool "
      "{:.0f}% full; not read for {} ms",
      context_.peer_address, throttle->events, throttle->bytes, fill * 100,
      absl::ToInt64Milliseconds(throttle->until - now));
  const int64_t wait_ms = std::max<int64_t>(
      1, absl::ToInt64Milliseconds(throttle->until - now) + 1);
  callbacks_->ResumeAfter(absl::Milliseconds(wait_ms));
  return true;
}

}  // namespace warden::dataplane::session
