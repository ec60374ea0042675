#include "controlplane/bundles/bundles.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/bundle/bundle.h"
#include "policy/lang/compile.h"

namespace warden::controlplane::bundles {
namespace {

using warden::v1::BundleRecord;

template <typename T>
bool SameRepeated(const google::protobuf::RepeatedPtrField<T>& a,
                  const google::protobuf::RepeatedPtrField<T>& b) {
  if (a.size() != b.size()) return false;
  for (int i = 0; i < a.size(); ++i) {
    if (a[i].SerializeAsString() != b[i].SerializeAsString()) return false;
  }
  return true;
}

}  // namespace

Bundles::Bundles(state::StateMachine* state, const store::Store* store,
                 SigningKey key)
    : state_(state), store_(store), key_(std::move(key)) {}

absl::StatusOr<uint64_t> Bundles::Head() const {
  auto head = store_->Get(store::Column::kBundles, state::kHeadKey);
  if (absl::IsNotFound(head.status())) return 0;
  if (!head.ok()) return head.status();
  uint64_t revision = 0;
  if (!absl::SimpleAtoi(*head, &revision)) {
    return absl::DataLossError("the head revision does not parse");
  }
  return revision;
}

absl::StatusOr<BundleRecord> Bundles::Get(uint64_t revision) const {
  if (revision == 0) {
    auto head = Head();
    if (!head.ok()) return head.status();
    if (*head == 0) return absl::NotFoundError("no policy has been pushed");
    revision = *head;
  }
  auto bytes =
      store_->Get(store::Column::kBundles, state::RevisionKey(revision));
  if (absl::IsNotFound(bytes.status())) {
    return absl::NotFoundError(absl::StrCat(
        "no revision ", revision,
        ": revisions are positions in warden-control's log, which token, "
        "directory and audit changes share, so their numbers skip; "
        "wardenctl policy history lists them"));
  }
  if (!bytes.ok()) return bytes.status();
  BundleRecord record;
  if (!record.ParseFromString(*bytes)) {
    return absl::DataLossError(
        absl::StrCat("revision ", revision, " does not parse"));
  }
  return record;
}

absl::StatusOr<Bundles::Revision> Bundles::Load(uint64_t revision) const {
  auto record = Get(revision);
  if (!record.ok()) return record.status();
  Revision out;
  if (!out.bundle.ParseFromString(record->signed_bundle().bundle())) {
    return absl::DataLossError(
        absl::StrCat("revision ", record->signed_bundle().revision(),
                     " holds no valid bundle"));
  }
  out.record = *std::move(record);
  return out;
}

absl::StatusOr<std::vector<BundleRecord>> Bundles::History(
    size_t limit, uint64_t before) const {
  auto rows = store_->Scan(store::Column::kBundles, state::kRevisionPrefix);
  if (!rows.ok()) return rows.status();
  const std::string below =
      before == 0 ? "" : state::RevisionKey(before);
  std::vector<BundleRecord> out;
  for (auto it = rows->rbegin(); it != rows->rend() && out.size() < limit;
       ++it) {
    if (!below.empty() && it->key >= below) continue;
    BundleRecord record;
    if (!record.ParseFromString(it->value)) {
      return absl::DataLossError(absl::StrCat(it->key, " does not parse"));
    }
    out.push_back(std::move(record));
  }
  return out;
}

absl::StatusOr<PushResult> Bundles::Publish(
    const warden::v1::PolicyBundle& bundle, const Sources& sources,
    const std::string& message, const std::string& created_by, absl::Time now,
    uint64_t rollback_of) {
  auto head = Head();
  if (!head.ok()) return head.status();
  auto index = state_->CommitAt(
      [&](uint64_t revision) -> absl::StatusOr<warden::v1::LogEntry> {
        policy::bundle::BundleMeta meta;
        meta.revision = revision;
        meta.parent_revision = *head;
        meta.created_by = created_by;
        meta.created_at = now;
        meta.message = message;
        meta.rollback_of = rollback_of;
        auto signed_bundle =
            policy::bundle::SignBundle(bundle, meta, key_.private_pem);
        if (!signed_bundle.ok()) return signed_bundle.status();
        warden::v1::LogEntry entry;
        BundleRecord* record = entry.mutable_put_bundle();
        *record->mutable_signed_bundle() = *std::move(signed_bundle);
        *record->mutable_sources() = sources;
        return entry;
      });
  if (!index.ok()) return index.status();
  return PushResult{*index, bundle.digest(), false};
}

absl::StatusOr<PushResult> Bundles::Push(
    const std::vector<policy::lang::SourceFile>& sources,
    const std::string& message, const std::string& created_by, absl::Time now,
    bool dry_run, std::vector<policy::lang::Diagnostic>* diagnostics) {
  if (sources.empty()) {
    return absl::InvalidArgumentError("a push needs at least one policy file");
  }
  auto bundle = policy::lang::Compile(sources, diagnostics);
  if (!bundle.ok()) return bundle.status();
  if (bundle->identity_providers_size() > 0) {
    if (!resolver_) {
      return absl::FailedPreconditionError(
          "this control plane cannot fetch identity providers' keys");
    }
    if (absl::Status s = resolver_(&*bundle); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          s.message(), " (the push is refused: proxies would not be able "
                       "to verify this provider's tokens)"));
    }
  }
  // From here to the commit, no other publication: the head compared with
  // is the parent of what is committed.
  absl::MutexLock lock(&publish_mu_);
  if (absl::Status s = WithIdentities(&*bundle); !s.ok()) return s;
  auto head = Get(0);
  if (!head.ok() && !absl::IsNotFound(head.status())) return head.status();
  if (head.ok()) {
    warden::v1::PolicyBundle running;
    if (running.ParseFromString(head->signed_bundle().bundle()) &&
        running.digest() == bundle->digest()) {
      return PushResult{head->signed_bundle().revision(), bundle->digest(),
                        true};
    }
  }
  if (dry_run) return PushResult{0, bundle->digest(), false};
  Sources kept;
  for (const auto& s : sources) {
    warden::v1::PolicySource* p = kept.Add();
    p->set_name(s.name);
    p->set_text(s.text);
  }
  return Publish(*bundle, kept, message, created_by, now, 0);
}

absl::Status Bundles::WithIdentities(
    warden::v1::PolicyBundle* bundle) const {
  bundle->clear_service_tokens();
  if (service_tokens_) {
    auto tokens = service_tokens_();
    if (!tokens.ok()) return tokens.status();
    for (auto& t : *tokens) *bundle->add_service_tokens() = std::move(t);
  }
  bundle->clear_directory();
  if (directory_) {
    auto entries = directory_();
    if (!entries.ok()) return entries.status();
    for (auto& e : *entries) *bundle->add_directory() = std::move(e);
  }
  bundle->set_digest(policy::lang::ContentDigest(*bundle));
  return absl::OkStatus();
}

absl::StatusOr<PushResult> Bundles::RefreshIdentities(
    const std::string& created_by, absl::Time now) {
  absl::MutexLock lock(&publish_mu_);
  auto head = Load(0);
  if (absl::IsNotFound(head.status())) return PushResult{0, "", true};
  if (!head.ok()) return head.status();
  warden::v1::PolicyBundle bundle = head->bundle;
  if (absl::Status s = WithIdentities(&bundle); !s.ok()) return s;
  if (bundle.digest() == head->bundle.digest()) {
    return PushResult{head->revision(), bundle.digest(), true};
  }
  std::vector<std::string> changed;
  if (!SameRepeated(bundle.service_tokens(), head->bundle.service_tokens())) {
    changed.push_back("service tokens");
  }
  if (!SameRepeated(bundle.directory(), head->bundle.directory())) {
    changed.push_back("directory");
  }
  return Publish(bundle, head->record.sources(),
                 absl::StrCat(absl::StrJoin(changed, " and "),
                              " changed since revision ", head->revision()),
                 created_by, now, 0);
}

absl::StatusOr<PushResult> Bundles::RefreshKeys(const std::string& created_by,
                                                absl::Time now) {
  auto head = Load(0);
  if (absl::IsNotFound(head.status())) return PushResult{0, "", true};
  if (!head.ok()) return head.status();
  const PushResult unchanged{head->revision(), head->bundle.digest(), true};
  if (head->bundle.identity_providers_size() == 0 || !resolver_) {
    return unchanged;
  }
  // Fetched without holding the publication lock (providers may be slow);
  // published only if nothing else was published meanwhile (else the
  // next round fetches again), so a push is never overwritten.
  warden::v1::PolicyBundle bundle = head->bundle;
  if (absl::Status s = resolver_(&bundle); !s.ok()) return s;
  if (bundle.digest() == head->bundle.digest()) return unchanged;
  absl::MutexLock lock(&publish_mu_);
  auto now_head = Head();
  if (!now_head.ok()) return now_head.status();
  if (*now_head != head->revision()) return unchanged;
  std::string names;
  for (const auto& idp : bundle.identity_providers()) {
    absl::StrAppend(&names, names.empty() ? "" : ", ", idp.name());
  }
  return Publish(bundle, head->record.sources(),
                 absl::StrCat("identity provider keys changed (", names,
                              ") since revision ", head->revision()),
                 created_by, now, 0);
}

absl::StatusOr<PushResult> Bundles::Rollback(uint64_t to_revision,
                                             const std::string& message,
                                             const std::string& created_by,
                                             absl::Time now) {
  if (to_revision == 0) {
    return absl::InvalidArgumentError("name the revision to roll back to");
  }
  auto target = Load(to_revision);
  if (!target.ok()) return target.status();
  // The old policies, but never old keys: an identity provider's keys are
  // fetched again (outside the lock: providers may be slow), so a key the
  // provider retired since does not come back with the revision. A
  // provider that cannot be reached refuses the rollback.
  if (target->bundle.identity_providers_size() > 0) {
    if (!resolver_) {
      return absl::FailedPreconditionError(
          "this control plane cannot fetch identity providers' keys");
    }
    if (absl::Status s = resolver_(&target->bundle); !s.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          s.message(), " (the rollback is refused: it would bring back the "
                       "keys of revision ",
          to_revision, ", which the provider may have retired)"));
    }
  }
  absl::MutexLock lock(&publish_mu_);
  // ... and never old service tokens or directory: a token revoked or a
  // user deactivated since must stay so.
  if (absl::Status s = WithIdentities(&target->bundle); !s.ok()) return s;
  return Publish(target->bundle, target->record.sources(),
                 message.empty()
                     ? absl::StrCat("rollback to revision ", to_revision)
                     : message,
                 created_by, now, to_revision);
}

}  // namespace warden::controlplane::bundles
