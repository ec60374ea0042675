#include "controlplane/audit/checkpointer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "controlplane/audit/checkpoint.h"
#include "spdlog/spdlog.h"

namespace warden::controlplane::audit {

absl::StatusOr<std::unique_ptr<Checkpointer>> Checkpointer::Create(
    const Ledger* ledger, std::string private_pem, absl::Duration busy,
    absl::Duration idle) {
  auto public_pem = crypto::Ed25519PublicKeyFromPrivate(private_pem);
  if (!public_pem.ok()) return public_pem.status();
  auto key_id = crypto::Ed25519KeyId(*public_pem);
  if (!key_id.ok()) return key_id.status();
  std::string origin = absl::StrCat("warden/audit/", *key_id);
  auto verifier = VerifierKey(origin, *public_pem);
  if (!verifier.ok()) return verifier.status();
  auto key = crypto::Ed25519Signer::FromPem(private_pem);
  if (!key.ok()) return key.status();
  return std::unique_ptr<Checkpointer>(
      new Checkpointer(ledger, *std::move(key), std::move(origin),
                       *std::move(verifier), busy, idle));
}

Checkpointer::Checkpointer(const Ledger* ledger, crypto::Ed25519Signer key,
                           std::string origin, std::string verifier_key,
                           absl::Duration busy, absl::Duration idle)
    : ledger_(ledger),
      key_(std::move(key)),
      origin_(std::move(origin)),
      verifier_key_(std::move(verifier_key)),
      busy_(busy),
      idle_(idle) {}

Checkpointer::~Checkpointer() { Stop(); }

absl::StatusOr<SignedCheckpoint> Checkpointer::SignNow(bool force) {
  auto tree = ledger_->Tree();
  if (!tree.ok()) return tree.status();
  {
    absl::MutexLock lock(&mu_);
    if (!force && latest_.signed_at != absl::InfinitePast() &&
        latest_.size == tree->size()) {
      return latest_;
    }
  }
  Checkpoint checkpoint{origin_, tree->size(), tree->Root()};
  auto body = CheckpointBody(checkpoint);
  if (!body.ok()) return body.status();
  auto note = SignNote(*body, origin_, key_);
  if (!note.ok()) return note.status();
  absl::MutexLock lock(&mu_);
  // Never go back: a concurrent SignNow may have signed a larger tree.
  if (tree->size() >= latest_.size ||
      latest_.signed_at == absl::InfinitePast()) {
    latest_ = {*std::move(note), tree->size(), checkpoint.root_hash,
               absl::Now()};
  }
  return latest_;
}

void Checkpointer::Start() {
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(busy_)) {
      absl::Time last;
      {
        absl::MutexLock lock(&mu_);
        last = latest_.signed_at;
      }
      const bool idle_due = absl::Now() - last >= idle_;
      auto signed_checkpoint = SignNow(/*force=*/idle_due);
      if (!signed_checkpoint.ok()) {
        spdlog::error("audit checkpoint: {}",
                      signed_checkpoint.status().ToString());
      }
    }
  });
}

void Checkpointer::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

SignedCheckpoint Checkpointer::latest() const {
  absl::MutexLock lock(&mu_);
  return latest_;
}

}  // namespace warden::controlplane::audit
