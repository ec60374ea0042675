#include "controlplane/server/audit_services.h"

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/proto_time.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/synchronization/mutex.h"
#include "common/audit_bounds.h"
#include "common/crypto.h"
#include "controlplane/audit/export.h"
#include "controlplane/server/services.h"
#include "controlplane/server/unknown_fields.h"
#include "google/protobuf/arena.h"
#include "spdlog/spdlog.h"

namespace warden::controlplane::server {
namespace {

// `append` as consecutive runs of its events, each run's entry within
// `budget` bytes (an event alone over it still goes alone: bounded events
// fit the log's limit).
std::vector<warden::v1::LogEntry> SplitAppend(
    const warden::v1::AuditAppend& append, size_t budget) {
  // Room for the entry's own framing and the source.
  const size_t overhead = 64 + append.source().size();
  std::vector<warden::v1::LogEntry> parts;
  warden::v1::AuditAppend* part = nullptr;
  size_t bytes = 0;
  for (int i = 0; i < append.leaves_size(); ++i) {
    // A leaf, its sequence and its digest, each with tag and length.
    const size_t item = append.leaves(i).size() + 8 + 11 +
                        (i < append.digests_size()
                             ? append.digests(i).size() + 2
                             : 0);
    if (part == nullptr || (part->leaves_size() > 0 &&
                            bytes + item + overhead > budget)) {
      part = parts.emplace_back().mutable_append_audit();
      part->set_source(append.source());
      bytes = 0;
    }
    part->add_leaves(append.leaves(i));
    part->add_sequences(append.sequences(i));
    if (i < append.digests_size()) part->add_digests(append.digests(i));
    bytes += item;
  }
  return parts;
}


// What a proxy may say of its own repairs (common/audit_bounds on the
// proxy: fields made valid or cut, the original's size and hash), bounded;
// the rest is warden-control's to say, so a proxy's claim to it is
// dropped (red team: a proxy key planted "[REPAIRED: undecodable]" and
// 300,000 "cut" entries). True when anything changed.
bool SanitizeProxyRepairs(warden::v1::AuditEvent* event) {
  if (!event->has_repairs()) return false;
  constexpr int kMaxEntries = 32;
  constexpr size_t kMaxEntryBytes = 128;
  warden::v1::EventRepairs* r = event->mutable_repairs();
  bool changed = !r->undecodable().empty() ||
                 !r->unauthorized_environment().empty() ||
                 r->unauthorized_kind() != 0 || r->unauthorized_body() ||
                 r->unknown_field_bytes() != 0;
  r->clear_undecodable();
  r->clear_unauthorized_environment();
  r->clear_unauthorized_kind();
  r->clear_unauthorized_body();
  r->clear_unknown_field_bytes();
  for (auto* list : {r->mutable_invalid_utf8(), r->mutable_truncated()}) {
    if (list->size() > kMaxEntries) {
      list->DeleteSubrange(kMaxEntries, list->size() - kMaxEntries);
      changed = true;
    }
    // Only names of the event's fields (red team pass 7: free text here
    // rendered as "[REPAIRED: ...; sent an admin action] control/...").
    const int before = list->size();
    list->erase(std::remove_if(list->begin(), list->end(),
                               [](const std::string& entry) {
                                 return !audit_bounds::IsEventFieldPath(entry);
                               }),
                list->end());
    changed = changed || list->size() != before;
    for (std::string& entry : *list) {
      if (entry.size() > kMaxEntryBytes) {
        size_t cut = kMaxEntryBytes;  // at a character's start (UTF-8)
        while (cut > 0 && (static_cast<unsigned char>(entry[cut]) & 0xC0) == 0x80) {
          --cut;
        }
        entry.resize(cut);
        changed = true;
      }
    }
  }
  if (r->original_sha256().size() > 32) {
    r->mutable_original_sha256()->resize(32);
    changed = true;
  }
  return changed;
}


grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context,
                               const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

// Entries per GetEntries call.
constexpr uint64_t kMaxEntries = 1000;

// An encoded event this small that decodes is within every limit of
// audit_bounds (its strings are valid UTF-8, or it would not decode).
constexpr size_t kBoundCheckAbove = 512;

}  // namespace

AuditIngestImpl::AuditIngestImpl(state::StateMachine* state,
                                 const audit::Ledger* ledger,
                                 const ca::Authority* authority)
    : state_(state), ledger_(ledger), authority_(authority) {
  for (int i = 0; i < kAppendThreads; ++i) {
    appenders_.emplace_back([this] {
      for (;;) {
        std::function<void()> work;
        {
          absl::MutexLock lock(&work_mu_);
          work_mu_.Await(absl::Condition(
              +[](AuditIngestImpl* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                   self->work_mu_) {
                return self->stopping_ || !self->work_.empty();
              },
              this));
          if (work_.empty()) return;  // stopping, and nothing left
          work = std::move(work_.front());
          work_.pop_front();
        }
        work();
      }
    });
  }
}

AuditIngestImpl::~AuditIngestImpl() {
  {
    absl::MutexLock lock(&work_mu_);
    stopping_ = true;
  }
  for (std::thread& t : appenders_) t.join();
}

absl::Status AuditIngestImpl::AppendFrom(
    const ca::ProxyIdentity& identity,
    const warden::v1::AppendAuditRequest& request, absl::Time now,
    warden::v1::AppendAuditResponse* response) {
  const int count = request.events_size() + request.encoded_events_size();
  if (count > kMaxAuditEventsPerAppend) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxAuditEventsPerAppend,
                     " events per Append; got ", count));
  }
  if (request.events_size() > 0 && request.encoded_events_size() > 0) {
    return absl::InvalidArgumentError(
        "an Append carries events or encoded_events, not both");
  }
  const std::string source =
      absl::StrCat(identity.environment, "/", identity.proxy_id);
  // One Append per source at a time: what it checks against the log
  // (acknowledged sequence, digests) holds until its entry is committed.
  absl::Mutex* source_mu;
  {
    absl::MutexLock lock(&sources_mu_);
    auto& slot = source_locks_[source];
    if (slot == nullptr) slot = std::make_unique<absl::Mutex>();
    source_mu = slot.get();
  }
  absl::ReleasableMutexLock source_lock(source_mu);
  auto acknowledged = ledger_->Acknowledged(source);
  if (!acknowledged.ok()) return acknowledged.status();
  uint64_t expected = 0;
  uint64_t conflicts = 0;
  uint64_t first_conflict = 0;
  warden::v1::LogEntry entry;
  warden::v1::AuditAppend* append = entry.mutable_append_audit();
  append->set_source(source);
  // The leaf is AuditLeaf{event, source, received_at}; with encoded events
  // the event's bytes go in as they came (a message field is its bytes).
  warden::v1::AuditLeaf leaf_tail;
  leaf_tail.set_source(source);
  SetTimestamp(now, leaf_tail.mutable_received_at());
  const std::string tail = leaf_tail.SerializeAsString();
  const bool encoded = request.encoded_events_size() > 0;
  // Each event is decoded into the same message. On an arena, decoding the
  // next one reuses its strings and leaves its sub-messages to the arena
  // instead of freeing and allocating each (dropped with the arena).
  google::protobuf::ArenaOptions arena_options;
  // About 1 KiB per event is plenty; a 64 KiB first block for an Append
  // of a few events was allocated and released for nothing.
  arena_options.start_block_size =
      std::clamp<size_t>(static_cast<size_t>(count) << 10, 4 << 10, 64 << 10);
  arena_options.max_block_size = 1 << 20;
  google::protobuf::Arena arena(arena_options);
  warden::v1::AuditEvent& decoded =
      *google::protobuf::Arena::CreateMessage<warden::v1::AuditEvent>(&arena);
  std::string encoding;
  for (int i = 0; i < count; ++i) {
    // Every event is bounded (valid UTF-8, fields and size within limits)
    // before it enters the log, so no entry can stop a reader; the bytes
    // that came are kept as they are when nothing needed a change.
    bool rewritten = false;
    if (encoded) {
      const std::string& bytes = request.encoded_events(i);
      if (!decoded.ParseFromString(bytes)) {
        // Not an AuditEvent (invalid UTF-8 from an older proxy, say):
        // recorded as undecodable under its sequence, never refused, or
        // this proxy's every later event would wait behind it.
        warden::v1::AuditEventHeader header;
        if (!header.ParseFromString(bytes)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "encoded event ", i,
              " is not an AuditEvent and names no proxy and sequence"));
        }
        decoded.Clear();
        decoded.set_proxy_id(header.proxy_id());
        decoded.set_environment(header.environment());
        decoded.set_sequence(header.sequence());
        SetTimestamp(now, decoded.mutable_time());
        decoded.mutable_repairs()->set_undecodable(bytes);
        audit_bounds::Bound(&decoded);
        rewritten = true;
      } else {
        if (identity.environment != "control" &&
            SanitizeProxyRepairs(&decoded)) {
          rewritten = true;
        }
        // Fields this version does not know are dropped: kept, a field of
        // nested groups within the parser's limit here is beyond it one
        // level deeper, in the leaf and in every reader's response (red
        // team: one such event made tail, search, the SIEM stream and
        // verify fail for good).
        if (HasUnknownFields(decoded)) {
          const size_t before = decoded.ByteSizeLong();
          decoded.DiscardUnknownFields();
          const size_t after = decoded.ByteSizeLong();
          if (after != before) {
            decoded.mutable_repairs()->set_unknown_field_bytes(before - after);
            rewritten = true;
          }
        }
        if (rewritten || bytes.size() > kBoundCheckAbove) {
          rewritten = audit_bounds::Bound(&decoded) || rewritten;
        }
      }
    } else {
      decoded = request.events(i);
      if (identity.environment != "control") SanitizeProxyRepairs(&decoded);
      if (HasUnknownFields(decoded)) {
        const size_t before = decoded.ByteSizeLong();
        decoded.DiscardUnknownFields();
        if (decoded.ByteSizeLong() != before) {
          decoded.mutable_repairs()->set_unknown_field_bytes(
              before - decoded.ByteSizeLong());
        }
      }
      audit_bounds::Bound(&decoded);
      rewritten = true;
    }
    if (decoded.proxy_id() != identity.proxy_id) {
      return absl::PermissionDeniedError(absl::StrCat(
          "event ", decoded.sequence(), " names proxy \"",
          absl::CHexEscape(decoded.proxy_id().substr(0, 80)),
          "\"; the certificate is for \"", identity.proxy_id, "\" of \"",
          identity.environment, "\""));
    }
    // An event carries the environment of the listener that served it,
    // which the certificate must cover; one it does not is recorded
    // under the certificate's own, never refused (the proxy's later
    // events would wait behind it) and never taken at its word.
    if (decoded.environment().empty()) {
      decoded.set_environment(identity.environment);  // an older proxy's
      rewritten = true;
    } else if (!identity.Serves(decoded.environment())) {
      decoded.mutable_repairs()->set_unauthorized_environment(
          decoded.environment());
      decoded.set_environment(identity.environment);
      rewritten = true;
      spdlog::warn("audit: event {} of {} named environment \"{}\", which "
                   "its certificate does not cover",
                   decoded.sequence(), source,
                   decoded.repairs().unauthorized_environment());
    }
    // Kinds only the control plane records: a proxy's claim to one is
    // kept as a repair, never taken at its word (and never refused: that
    // proxy's later events would wait behind it).
    if (identity.environment != "control" &&
        (decoded.kind() == warden::v1::AUDIT_EVENT_KIND_ADMIN ||
         decoded.kind() == warden::v1::AUDIT_EVENT_KIND_POLICY_PUSH)) {
      decoded.mutable_repairs()->set_unauthorized_kind(decoded.kind());
      decoded.set_kind(warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED);
      rewritten = true;
      spdlog::warn("audit: event {} of {} claimed kind {}, which only "
                   "warden-control records",
                   decoded.sequence(), source,
                   warden::v1::AuditEventKind_Name(
                       decoded.repairs().unauthorized_kind()));
    }
    // The same for the body, whatever the kind (red team: an admin body
    // under kind STATEMENT printed as an administrator's token creation):
    // a proxy's admin action is kept only as bytes.
    if (identity.environment != "control" && decoded.has_admin()) {
      decoded.mutable_repairs()->set_unauthorized_body(true);
      decoded.mutable_repairs()->set_undecodable(
          decoded.admin().SerializeAsString().substr(0, 4096));
      decoded.clear_admin();
      if (decoded.kind() != warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED &&
          decoded.repairs().unauthorized_kind() ==
              warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED) {
        decoded.mutable_repairs()->set_unauthorized_kind(decoded.kind());
      }
      decoded.set_kind(warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED);
      rewritten = true;
      spdlog::warn("audit: event {} of {} carried an administrator's action, "
                   "which only warden-control records",
                   decoded.sequence(), source);
    }
    const warden::v1::AuditEvent& event = decoded;
    if (event.sequence() == 0 ||
        (expected != 0 && event.sequence() != expected)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events must have consecutive sequences from 1; got ",
          event.sequence(), expected != 0 ? absl::StrCat(" after ",
                                                         expected - 1)
                                          : ""));
    }
    expected = event.sequence() + 1;
    // What tells a resend from another event under a used sequence: the
    // event as recorded (environment filled in, before bounding), in one
    // encoding whatever the transport was.
    event.SerializeToString(&encoding);  // reuses the buffer's memory
    const std::string digest = crypto::Sha256(encoding);
    if (event.sequence() <= *acknowledged) {
      auto have = ledger_->Digest(source, event.sequence());
      if (absl::IsNotFound(have.status())) continue;  // recorded before digests
      if (!have.ok()) return have.status();
      if (*have == digest) continue;  // a resend: have it already
      ++conflicts;
      if (first_conflict == 0) first_conflict = event.sequence();
      continue;
    }
    if (append->leaves_size() == 0 && event.sequence() != *acknowledged + 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sequence ", event.sequence(), " of ", source,
          " leaves a gap: the log has every event up to ", *acknowledged,
          "; resend from ", *acknowledged + 1));
    }
    if (!rewritten) {
      const std::string& bytes = request.encoded_events(i);
      std::string* leaf = append->add_leaves();
      leaf->reserve(bytes.size() + tail.size() + 6);
      leaf->push_back('\x0a');  // field 1 (event), length-delimited
      for (uint64_t n = bytes.size(); ; n >>= 7) {  // varint length
        if (n < 0x80) {
          leaf->push_back(static_cast<char>(n));
          break;
        }
        leaf->push_back(static_cast<char>((n & 0x7f) | 0x80));
      }
      leaf->append(bytes);
      leaf->append(tail);
    } else {
      warden::v1::AuditLeaf leaf;
      *leaf.mutable_event() = event;
      leaf.set_source(source);
      *leaf.mutable_received_at() = leaf_tail.received_at();
      append->add_leaves(leaf.SerializeAsString());
    }
    append->add_sequences(event.sequence());
    append->add_digests(digest);
  }
  if (conflicts > 0) {
    // Another proxy speaks as this one (a copied state directory), or its
    // spool was replaced: never a silent duplicate. Nothing of this
    // Append is recorded, so the sender keeps every event in its spool.
    const uint64_t total = conflicts_.fetch_add(conflicts) + conflicts;
    const std::string detail = absl::StrCat(
        conflicts, " event(s) from sequence ", first_conflict,
        " differ from the ones recorded under the same sequences; the "
        "Append was refused (", total, " conflicting events since start)");
    spdlog::error("audit: {}: {}", source, detail);
    bool raise = false;
    uint64_t since = 0;
    {
      absl::MutexLock lock(&sources_mu_);
      AlarmState& state = alarms_[source];
      state.since += conflicts;
      if (now - state.last >= absl::Minutes(1)) {
        raise = true;
        since = state.since;
        state.since = 0;
        state.last = now;
      }
    }
    if (raise && alarm_ && identity.environment != "control") {
      source_lock.Release();  // the alarm appends as another source
      alarm_(source, absl::StrCat(
                         since, " conflicting event(s) refused since the "
                                "last alarm; first sequence ",
                         first_conflict, " of this Append"));
    }
    return absl::AlreadyExistsError(absl::StrCat(
        "sequence ", first_conflict, " of ", source,
        " is already recorded with other content: another proxy is using "
        "this proxy's identity (a copied state_dir?) or its spool was "
        "replaced. These events stay in the spool; give each proxy its own "
        "state_dir and enrollment"));
  }
  if (append->leaves_size() > 0) {
    // One log entry, unless it is over what the log takes in one append
    // (a cluster's etcd: about 1.4 MiB): then consecutive runs of the
    // events, in order, each its own entry (this source's lock keeps
    // anything else of it from coming between). A run that fails leaves
    // the ones before it recorded; the proxy resends from what was
    // acknowledged.
    const size_t budget = state_->MaxEntryBytes();
    if (entry.ByteSizeLong() <= budget) {
      auto index = state_->Commit(entry);
      if (!index.ok()) return index.status();
    } else {
      for (const warden::v1::LogEntry& part : SplitAppend(*append, budget)) {
        auto index = state_->Commit(part);
        if (!index.ok()) return index.status();
      }
    }
  }
  auto after = ledger_->Acknowledged(source);
  if (!after.ok()) return after.status();
  auto tree = ledger_->Tree();
  if (!tree.ok()) return tree.status();
  response->set_acknowledged_sequence(*after);
  response->set_tree_size(tree->size());
  return absl::OkStatus();
}

ApiRefusals::ApiRefusals(AdminAudit* audit, LoginFailures::Options options)
    : audit_(audit), failures_([&] {
        options.refuse_after = 0;  // counted and summarised, never refused
        return options;
      }()) {
  summarizer_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      RecordSummaries(false);
    }
  });
}

ApiRefusals::~ApiRefusals() {
  stop_.Notify();
  summarizer_.join();
  RecordSummaries(true);
}

void ApiRefusals::Refused(const std::string& peer, const std::string& actor,
                          absl::string_view method, const absl::Status& why,
                          absl::string_view needed_scope) {
  // "/warden.v1.TokenService/CreateToken" -> "TokenService/CreateToken".
  absl::string_view call = method;
  absl::ConsumePrefix(&call, "/warden.v1.");
  const std::string needed =
      !needed_scope.empty()
          ? std::string(needed_scope)
          : warden::v1::TokenScope_Name(RequiredScope(method));
  spdlog::info("refused {} from {} ({}): {}", std::string(call), peer, actor,
               why.ToString());
  const absl::Time now = absl::Now();
  if (!failures_.Failed(peer, actor, now)) return;
  {
    // One by one up to kMaxIndividualPerMinute across all addresses; past
    // that, counted into one summary a minute (red team pass 8: 30
    // loopback addresses made 600 records in 22 s).
    absl::MutexLock lock(&overflow_mu_);
    if (now - minute_start_ >= absl::Minutes(1)) {
      minute_start_ = now;
      individual_ = 0;
    }
    if (individual_ >= kMaxIndividualPerMinute) {
      ++overflow_;
      if (overflow_peers_.size() < 1000) overflow_peers_.insert(peer);
      return;
    }
    ++individual_;
  }
  // (What a caller sent, such as a SCIM path, may not be UTF-8: made
  // valid here rather than marked as repaired at ingest.)
  audit_->Record(actor, "api.refused",
                 audit_bounds::MakeValidUtf8(call),
                 audit_bounds::MakeValidUtf8(absl::StrCat(
                     "from ", peer, ", needs ", needed, ": ", why.ToString())),
                 false);
}

void ApiRefusals::RecordSummaries(bool all) {
  {
    uint64_t overflow = 0;
    std::set<std::string> peers;
    {
      absl::MutexLock lock(&overflow_mu_);
      if (overflow_ > 0 &&
          (all || absl::Now() - minute_start_ >= absl::Minutes(1))) {
        overflow = overflow_;
        peers.swap(overflow_peers_);
        overflow_ = 0;
      }
    }
    if (overflow > 0) {
      std::vector<std::string> shown(peers.begin(), peers.end());
      if (shown.size() > 20) shown.resize(20);
      const std::string text = absl::StrCat(
          overflow, " more refused API calls past ", kMaxIndividualPerMinute,
          " recorded one by one in a minute, from ", peers.size(),
          peers.size() >= 1000 ? "+" : "", " addresses: ",
          absl::StrJoin(shown, ", "), shown.size() < peers.size() ? ", ..." : "");
      spdlog::warn("API: {}", text);
      audit_->Record("unauthenticated", "api.refused.summary", "(many addresses)",
                     text, false);
    }
  }
  for (const auto& s : failures_.TakeSummaries(absl::Now(), all)) {
    std::string text = LoginFailures::Describe(s);
    // The summary speaks of logins; these are API calls.
    absl::StrReplaceAll({{"failed logins", "refused API calls"},
                         {"users tried", "callers"}},
                        &text);
    spdlog::warn("API: {}", text);
    audit_->Record("unauthenticated", "api.refused.summary", s.address, text,
                   false);
  }
}

AdminAudit::AdminAudit(AuditIngestImpl* ingest, std::string self)
    : ingest_(ingest), self_(std::move(self)) {
  ingest_->SetAlarm([this](const std::string& source,
                           const std::string& detail) {
    Record("warden-control", "audit.sequence_conflict", source, detail,
           false);
  });
}

absl::Status AdminAudit::Record(const std::string& actor,
                                const std::string& action,
                                const std::string& target,
                                const std::string& detail, bool success) {
  const ca::ProxyIdentity self{self_, "control"};
  absl::MutexLock lock(&mu_);
  const absl::Time now = absl::Now();
  absl::Status last;
  // A sequence another writer of this name took first (two replicas given
  // one --replica-name, red team): ALREADY_EXISTS. The event is not
  // dropped: ask the log where the sequence is now and append after it.
  for (int attempt = 0; attempt < 5; ++attempt) {
    warden::v1::AppendAuditResponse response;
    if (next_ == 0) {
      last = ingest_->AppendFrom(self, {}, now, &response);
      if (!last.ok()) break;
      next_ = response.acknowledged_sequence() + 1;
    }
    warden::v1::AppendAuditRequest request;
    warden::v1::AuditEvent* e = request.add_events();
    e->set_kind(warden::v1::AUDIT_EVENT_KIND_ADMIN);
    e->set_proxy_id(self.proxy_id);
    e->set_environment(self.environment);
    e->set_sequence(next_);
    SetTimestamp(now, e->mutable_time());
    e->mutable_identity()->set_user(actor);
    auto* admin = e->mutable_admin();
    admin->set_actor(actor);
    admin->set_action(action);
    admin->set_target(target);
    admin->set_detail(detail);
    admin->set_success(success);
    last = ingest_->AppendFrom(self, request, now, &response);
    if (last.ok()) {
      next_ = response.acknowledged_sequence() + 1;
      return absl::OkStatus();
    }
    next_ = 0;  // ask the log again
    if (!absl::IsAlreadyExists(last)) break;
    if (attempt == 0) {
      spdlog::warn(
          "admin audit: a sequence of control/{} was taken by another "
          "writer (one --replica-name given to two replicas?); the event "
          "goes after it",
          self.proxy_id);
    }
  }
  spdlog::error("admin audit event {} not recorded: {}", action,
                last.ToString());
  return last;
}

grpc::ServerUnaryReactor* AuditIngestImpl::Append(
    grpc::CallbackServerContext* context,
    const warden::v1::AppendAuditRequest* request,
    warden::v1::AppendAuditResponse* response) {
  auto identity =
      authority_->AuthenticatePeer(*context->auth_context(), absl::Now());
  if (!identity.ok()) {
    // A replaced or revoked proxy certificate: its proxy retries every few
    // seconds, so the log says so at most every 10 s, not per call.
    static std::atomic<int64_t> last_logged{0};
    const int64_t now_s = absl::ToUnixSeconds(absl::Now());
    int64_t last = last_logged.load();
    if (absl::IsPermissionDenied(identity.status()) && now_s - last >= 10 &&
        last_logged.compare_exchange_strong(last, now_s)) {
      spdlog::warn("audit: refused an append from {}: {}",
                   PeerHost(context->peer()),
                   std::string(identity.status().message()));
    }
    return Done(context, identity.status());
  }
  if (identity->environment == "control") {
    // The control plane's own events; no proxy may write as it.
    return Done(context, absl::PermissionDeniedError(
                             "environment \"control\" is reserved for "
                             "warden-control's own events"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  {
    absl::MutexLock lock(&work_mu_);
    if (inline_appends_ > 0) {
      // A gRPC thread already waits for a commit: this one is handed over,
      // so that gRPC's threads go on reading.
      work_.push_back([this, reactor, identity = *std::move(identity),
                       request, response] {
        reactor->Finish(
            ToGrpc(AppendFrom(identity, *request, absl::Now(), response)));
      });
      return reactor;
    }
    ++inline_appends_;
  }
  // The only Append under way on gRPC's threads (a proxy appending alone,
  // the common case): run here and spare the handover to another thread.
  const absl::Status status =
      AppendFrom(*identity, *request, absl::Now(), response);
  {
    absl::MutexLock lock(&work_mu_);
    --inline_appends_;
  }
  reactor->Finish(ToGrpc(status));
  return reactor;
}

grpc::ServerUnaryReactor* AuditLogImpl::GetCheckpoint(
    grpc::CallbackServerContext* context,
    const warden::v1::GetCheckpointRequest*,
    warden::v1::GetCheckpointResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.AuditLog/GetCheckpoint");
  if (!who.ok()) return Done(context, who.status());
  // Sign the current tree if the background signer has not yet.
  auto latest = checkpointer_->SignNow();
  if (!latest.ok()) return Done(context, latest.status());
  response->set_checkpoint(latest->note);
  response->set_tree_size(latest->size);
  response->set_root_hash(latest->root_hash);
  response->set_verifier_key(checkpointer_->verifier_key());
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AuditLogImpl::GetEntries(
    grpc::CallbackServerContext* context,
    const warden::v1::GetEntriesRequest* request,
    warden::v1::GetEntriesResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.AuditLog/GetEntries");
  if (!who.ok()) return Done(context, who.status());
  if (request->end() < request->start()) {
    return Done(context, absl::InvalidArgumentError("end is before start"));
  }
  auto entries = ledger_->Entries(request->start(), request->end(), kMaxEntries);
  if (!entries.ok()) return Done(context, entries.status());
  for (auto& e : *entries) *response->add_entries() = std::move(e);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AuditLogImpl::GetInclusionProof(
    grpc::CallbackServerContext* context,
    const warden::v1::GetInclusionProofRequest* request,
    warden::v1::GetInclusionProofResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.AuditLog/GetInclusionProof");
  if (!who.ok()) return Done(context, who.status());
  uint64_t size = request->tree_size();
  if (size == 0) {
    auto tree = ledger_->Tree();
    if (!tree.ok()) return Done(context, tree.status());
    size = tree->size();
  }
  auto proof = ledger_->InclusionProof(request->index(), size);
  if (!proof.ok()) return Done(context, proof.status());
  response->set_index(request->index());
  response->set_tree_size(size);
  for (auto& h : *proof) response->add_hashes(std::move(h));
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AuditLogImpl::GetConsistencyProof(
    grpc::CallbackServerContext* context,
    const warden::v1::GetConsistencyProofRequest* request,
    warden::v1::GetConsistencyProofResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.AuditLog/GetConsistencyProof");
  if (!who.ok()) return Done(context, who.status());
  auto proof =
      ledger_->ConsistencyProof(request->first_size(), request->second_size());
  if (!proof.ok()) return Done(context, proof.status());
  for (auto& h : *proof) response->add_hashes(std::move(h));
  return Done(context, absl::OkStatus());
}

// ---------------------------------------------------------------------------
// AuditExport

namespace {

constexpr absl::Duration kIdlePoll = absl::Milliseconds(200);

void FillCheckpoint(const audit::SignedCheckpoint& cp,
                    const std::string& verifier_key,
                    warden::v1::GetCheckpointResponse* out) {
  out->set_checkpoint(cp.note);
  out->set_tree_size(cp.size);
  out->set_root_hash(cp.root_hash);
  out->set_verifier_key(verifier_key);
}

// A refused Subscribe.
class RefusedSubscribe final
    : public grpc::ServerWriteReactor<warden::v1::SubscribeResponse> {
 public:
  explicit RefusedSubscribe(const absl::Status& status) {
    Finish(ToGrpc(status));
  }
  void OnDone() override { delete this; }
};

// One Subscribe stream, written from its own thread (a SIEM connection is
// long-lived and rare; a thread each keeps the flow plain). The thread owns
// the loop; the reactor's callbacks only signal it. After Finish() the
// thread touches nothing of the stream: OnDone deletes it.
class SubscribeStream final
    : public grpc::ServerWriteReactor<warden::v1::SubscribeResponse> {
 public:
  SubscribeStream(const AuditExportImpl* service,
                  const warden::v1::SubscribeRequest& request, uint64_t start,
                  std::string bearer)
      : service_(service),
        request_(request),
        cursor_(start),
        bearer_(std::move(bearer)) {
    interval_ = absl::Seconds(10);
    if (request.has_checkpoint_interval()) {
      interval_ = FromDuration(request.checkpoint_interval());
      interval_ = std::max(interval_, absl::Milliseconds(100));
    }
    std::thread([this] { Run(); }).detach();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) broken_ = true;
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    broken_ = true;
  }
  void OnDone() override { delete this; }

 private:
  // Writes one message and waits for it to go; false when the stream is
  // gone.
  bool Send(const warden::v1::SubscribeResponse& response) {
    {
      absl::MutexLock lock(&mu_);
      if (broken_) return false;
      writing_ = true;
      out_ = response;
    }
    StartWrite(&out_);
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](SubscribeStream* s) { return !s->writing_ || s->broken_; }, this));
    return !broken_;
  }

  bool SendCheckpoint() {
    auto cp = service_->checkpointer()->SignNow();
    if (!cp.ok()) return true;  // logged by the signer; try again later
    warden::v1::SubscribeResponse response;
    FillCheckpoint(*cp, service_->checkpointer()->verifier_key(),
                   response.mutable_checkpoint());
    response.set_cursor(cursor_);
    return Send(response);
  }

  void Run() {
    absl::Status end = absl::OkStatus();
    absl::Time last_checkpoint = absl::InfinitePast();
    absl::Time last_authorized = absl::Now();
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        if (broken_) break;
      }
      auto entries = service_->ledger()->Entries(cursor_, UINT64_MAX, 256);
      if (!entries.ok()) {
        end = entries.status();
        break;
      }
      // The token is checked again before anything new is sent (and every
      // second while idle), revocations on other replicas included: an
      // event recorded after a revocation returned is never sent with it.
      if (!entries->empty() ||
          absl::Now() - last_authorized >= absl::Seconds(1)) {
        end = service_->StillAuthorized(bearer_);
        if (!end.ok()) break;
        last_authorized = absl::Now();
      }
      bool ok = true;
      for (const auto& e : *entries) {
        warden::v1::SubscribeResponse response;
        warden::v1::AuditLeaf record;
        if (!audit::Export(e.index(), e.leaf(), request_.format(),
                           response.mutable_event(), &record)
                 .ok()) {
          end = absl::DataLossError(
              absl::StrCat("leaf ", e.index(), " does not parse"));
          ok = false;
          break;
        }
        cursor_ = e.index() + 1;
        if (!audit::Matches(request_.filter(), record)) continue;
        response.set_cursor(cursor_);
        if (!Send(response)) {
          ok = false;
          break;
        }
      }
      if (!ok) break;
      if (absl::Now() - last_checkpoint >= interval_) {
        // Covers everything sent so far (the tree has at least cursor_).
        if (!SendCheckpoint()) break;
        last_checkpoint = absl::Now();
      }
      if (entries->empty()) {
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&broken_), kIdlePoll);
      }
    }
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      cancelled = broken_;
    }
    Finish(cancelled && end.ok() ? grpc::Status::CANCELLED : ToGrpc(end));
  }

  const AuditExportImpl* const service_;
  const warden::v1::SubscribeRequest request_;
  uint64_t cursor_;
  const std::string bearer_;
  absl::Duration interval_;
  warden::v1::SubscribeResponse out_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerWriteReactor<warden::v1::SubscribeResponse>*
AuditExportImpl::Subscribe(grpc::CallbackServerContext* context,
                           const warden::v1::SubscribeRequest* request) {
  auto who = Authorize(*tokens_, context, "/warden.v1.AuditExport/Subscribe");
  if (!who.ok()) return new RefusedSubscribe(who.status());
  uint64_t start = request->cursor();
  if (start == 0 && request->has_since()) {
    auto first = audit::FirstIndexAtOrAfter(
        *ledger_, FromTimestamp(request->since()));
    if (!first.ok()) return new RefusedSubscribe(first.status());
    start = *first;
  }
  const auto& metadata = context->client_metadata();
  const auto it = metadata.find("authorization");
  std::string bearer;
  if (it != metadata.end()) {
    bearer.assign(it->second.data(), it->second.size());
    if (absl::StartsWith(bearer, "Bearer ")) bearer.erase(0, 7);
  }
  return new SubscribeStream(this, *request, start, std::move(bearer));
}

absl::Status AuditExportImpl::StillAuthorized(const std::string& bearer) const {
  auto info = tokens_->Authenticate(bearer, absl::Now());
  if (!info.ok()) {
    return absl::Status(info.status().code(),
                        absl::StrCat("the stream's token no longer holds: ",
                                     info.status().message()));
  }
  if (!tokens::Tokens::HasScope(
          *info, RequiredScope("/warden.v1.AuditExport/Subscribe"))) {
    return absl::PermissionDeniedError(
        "the stream's token no longer has the audit:read scope");
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AuditExportImpl::ListEvents(
    grpc::CallbackServerContext* context,
    const warden::v1::ListEventsRequest* request,
    warden::v1::ListEventsResponse* response) {
  auto who = Authorize(*tokens_, context, "/warden.v1.AuditExport/ListEvents");
  if (!who.ok()) return Done(context, who.status());
  const int page = request->page_size() <= 0
                       ? 100
                       : std::min(request->page_size(), 1000);
  const uint64_t scan =
      request->scan_limit() == 0 ? 100000 : request->scan_limit();
  auto tree = ledger_->Tree();
  if (!tree.ok()) return Done(context, tree.status());
  uint64_t cursor = request->cursor();
  const uint64_t stop = std::min(tree->size(), cursor + scan);
  // A page is bounded in bytes as well as events, so no stretch of the
  // log is too large to list (it always holds at least one event).
  size_t bytes = 0;
  bool full = false;
  while (!full && cursor < stop && response->events_size() < page) {
    auto entries = ledger_->Entries(cursor, stop, 256);
    if (!entries.ok()) return Done(context, entries.status());
    if (entries->empty()) break;
    for (const auto& e : *entries) {
      warden::v1::ExportedEvent event;
      warden::v1::AuditLeaf record;
      if (absl::Status s = audit::Export(e.index(), e.leaf(),
                                         request->format(), &event, &record);
          !s.ok()) {
        return Done(context, s);
      }
      if (audit::Matches(request->filter(), record)) {
        const size_t size = event.ByteSizeLong() + 8;
        if (response->events_size() > 0 &&
            bytes + size > audit::Ledger::kMaxPageBytes) {
          full = true;  // this one starts the next page
          break;
        }
        bytes += size;
        *response->add_events() = std::move(event);
      }
      cursor = e.index() + 1;
      if (response->events_size() >= page) break;
    }
  }
  response->set_next_cursor(cursor);
  return Done(context, absl::OkStatus());
}

}  // namespace warden::controlplane::server
