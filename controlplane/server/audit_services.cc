#include "controlplane/server/audit_services.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "controlplane/server/services.h"

namespace warden::controlplane::server {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context,
                               const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

// Entries per GetEntries call.
constexpr uint64_t kMaxEntries = 1000;

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1000000);
  out->set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
}

}  // namespace

absl::Status AuditIngestImpl::AppendFrom(
    const ca::ProxyIdentity& identity,
    const warden::v1::AppendAuditRequest& request, absl::Time now,
    warden::v1::AppendAuditResponse* response) {
  if (request.events_size() > kMaxAuditEventsPerAppend) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxAuditEventsPerAppend,
                     " events per Append; got ", request.events_size()));
  }
  const std::string source =
      absl::StrCat(identity.environment, "/", identity.proxy_id);
  auto acknowledged = ledger_->Acknowledged(source);
  if (!acknowledged.ok()) return acknowledged.status();
  uint64_t expected = 0;
  warden::v1::LogEntry entry;
  warden::v1::AuditAppend* append = entry.mutable_append_audit();
  append->set_source(source);
  for (const warden::v1::AuditEvent& event : request.events()) {
    if (event.proxy_id() != identity.proxy_id ||
        event.environment() != identity.environment) {
      return absl::PermissionDeniedError(absl::StrCat(
          "event ", event.sequence(), " names proxy \"", event.proxy_id(),
          "\" of \"", event.environment(), "\"; the certificate is for \"",
          identity.proxy_id, "\" of \"", identity.environment, "\""));
    }
    if (event.sequence() == 0 ||
        (expected != 0 && event.sequence() != expected)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "events must have consecutive sequences from 1; got ",
          event.sequence(), expected != 0 ? absl::StrCat(" after ",
                                                         expected - 1)
                                          : ""));
    }
    expected = event.sequence() + 1;
    if (event.sequence() <= *acknowledged) continue;  // have it already
    if (append->leaves_size() == 0 && event.sequence() != *acknowledged + 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sequence ", event.sequence(), " of ", source,
          " leaves a gap: the log has every event up to ", *acknowledged,
          "; resend from ", *acknowledged + 1));
    }
    warden::v1::AuditLeaf leaf;
    *leaf.mutable_event() = event;
    leaf.set_source(source);
    SetTime(now, leaf.mutable_received_at());
    append->add_leaves(leaf.SerializeAsString());
    append->add_sequences(event.sequence());
  }
  if (append->leaves_size() > 0) {
    auto index = state_->Commit(entry);
    if (!index.ok()) return index.status();
  }
  auto after = ledger_->Acknowledged(source);
  if (!after.ok()) return after.status();
  auto tree = ledger_->Tree();
  if (!tree.ok()) return tree.status();
  response->set_acknowledged_sequence(*after);
  response->set_tree_size(tree->size());
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AuditIngestImpl::Append(
    grpc::CallbackServerContext* context,
    const warden::v1::AppendAuditRequest* request,
    warden::v1::AppendAuditResponse* response) {
  auto identity =
      authority_->AuthenticatePeer(*context->auth_context(), absl::Now());
  if (!identity.ok()) return Done(context, identity.status());
  return Done(context, AppendFrom(*identity, *request, absl::Now(), response));
}

grpc::ServerUnaryReactor* AuditLogImpl::GetCheckpoint(
    grpc::CallbackServerContext* context,
    const warden::v1::GetCheckpointRequest*,
    warden::v1::GetCheckpointResponse* response) {
  auto who = Authorize(*tokens_, context,
                       RequiredScope("/warden.v1.AuditLog/GetCheckpoint"));
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
  auto who = Authorize(*tokens_, context,
                       RequiredScope("/warden.v1.AuditLog/GetEntries"));
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
  auto who = Authorize(*tokens_, context,
                       RequiredScope("/warden.v1.AuditLog/GetInclusionProof"));
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
  auto who = Authorize(
      *tokens_, context,
      RequiredScope("/warden.v1.AuditLog/GetConsistencyProof"));
  if (!who.ok()) return Done(context, who.status());
  auto proof =
      ledger_->ConsistencyProof(request->first_size(), request->second_size());
  if (!proof.ok()) return Done(context, proof.status());
  for (auto& h : *proof) response->add_hashes(std::move(h));
  return Done(context, absl::OkStatus());
}

}  // namespace warden::controlplane::server
