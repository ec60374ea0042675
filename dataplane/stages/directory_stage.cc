#include "dataplane/stages/directory_stage.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/names.h"
#include "dataplane/pgwire/sqlstate.h"
#include "spdlog/spdlog.h"

namespace warden::dataplane::stages {

DirectoryStage::DirectoryStage(StageCallbacks* callbacks,
                               warden::v1::Identity* identity,
                               policy::engine::Subject* subject, Login login)
    : callbacks_(callbacks),
      identity_(identity),
      subject_(subject),
      login_(std::move(login)),
      base_groups_(identity->groups().begin(), identity->groups().end()) {}

StageResult DirectoryStage::OnFrontend(const Frontend& m, bool resumed) {
  // The first message of a batch judged by a newer policy checks it; the
  // rest of the batch sees the same generation.
  const gate::Gate* gate = callbacks_->execution().gate;
  if (gate == nullptr || gate->generation() == generation_) {
    return StageResult::kContinue;
  }
  // Refused: the session ends, and the chain with it (nothing of this
  // batch reaches the database).
  Recheck(*gate);
  return StageResult::kContinue;
}

void DirectoryStage::OnPolicy(const gate::Gate& gate) {
  if (gate.generation() != generation_) Recheck(gate);
}

bool DirectoryStage::Recheck(const gate::Gate& gate) {
  if (Apply(gate)) return true;
  const std::string why = Reason();
  spdlog::info("session {}: {}; closing it", callbacks_->facts().peer_address,
               why);
  callbacks_->Fail(pgwire::kInvalidAuthorization,
                   absl::StrCat("Warden: ", why, "; this session is closed"),
                   warden::v1::SESSION_END_REASON_POLICY);
  return false;
}

bool DirectoryStage::Apply(const gate::Gate& gate) {
  generation_ = gate.generation();
  credential_predates_name_ = false;
  const policy::engine::DirectoryMatch match =
      gate.FindDirectoryEntry(identity_->user());
  if (!login_.provider_identity) {
    // A user of the proxy config: only an administrator's hold on the
    // name reaches it; the provider's entries, aliases and groups do not
    // (red team: a SCIM token locked out and promoted break-glass users).
    if (match.entry != nullptr && match.entry->admin_hold() &&
        SameName(match.entry->user_name(), identity_->user())) {
      inactive_because_ = match.entry->inactive_because();
      return false;
    }
    return true;
  }
  ambiguous_ = match.ambiguous;
  if (match.ambiguous) return false;
  const warden::v1::DirectoryEntry* entry = match.entry;
  if (entry != nullptr && !entry->active()) {
    inactive_because_ = entry->inactive_because();
    return false;
  }
  // A token or certificate issued before the name became its current
  // user's was issued to the user who had it before (deleted or renamed
  // by the identity provider; red team pass 7: such a certificate, valid
  // for hours, passed as the new account).
  // The same for a name moved between users (red team pass 9): per name,
  // the one this session connected as.
  const std::optional<absl::Time> reused =
      entry == nullptr
          ? std::nullopt
          : policy::engine::NameReusedAt(*entry, identity_->user());
  // Whole seconds on both sides (a token's iat, a certificate's
  // notBefore): a credential of the second the name moved in may be the
  // earlier holder's, and is refused too (red team pass 10).
  if (reused.has_value() && login_.credential_issued.has_value() &&
      absl::ToUnixSeconds(*login_.credential_issued) <=
          absl::ToUnixSeconds(*reused)) {
    credential_predates_name_ = true;
    inactive_because_ = absl::StrCat(
        "this credential was issued before the name became its current "
        "user's (", FoldName(identity_->user()), " since ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", *reused, absl::UTCTimeZone()),
        "; it changed hands in the identity provider): get a new token or "
        "run wardenctl login again");
    return false;
  }
  std::vector<std::string> groups = base_groups_;
  if (entry != nullptr) {
    for (const std::string& g : entry->groups()) {
      if (std::find(groups.begin(), groups.end(), g) == groups.end()) {
        groups.push_back(g);
      }
    }
  }
  if (groups != subject_->groups) {
    subject_->groups = groups;
    // (Prepared statements are judged again anyway: a new gate.)
    identity_->mutable_groups()->Assign(groups.begin(), groups.end());
    ++identity_changes_;
  }
  std::map<std::string, std::string> attributes;
  if (entry != nullptr) {
    attributes.insert(entry->attributes().begin(), entry->attributes().end());
  }
  if (attributes != subject_->attributes) {
    subject_->attributes = attributes;
    identity_->mutable_attributes()->clear();
    identity_->mutable_attributes()->insert(attributes.begin(),
                                           attributes.end());
    ++identity_changes_;
  }
  return true;
}

std::string DirectoryStage::Reason() const {
  if (ambiguous_) {
    return absl::StrCat(identity_->user(),
                        " is an e-mail alias of more than one user in Warden's "
                        "directory, so it names no one for sure; connect as "
                        "the userName");
  }
  if (credential_predates_name_) {
    return absl::StrCat(identity_->user(), ": ", inactive_because_);
  }
  return absl::StrCat(identity_->user(), " is deactivated in Warden's directory",
                      inactive_because_.empty() ? "" : ": ", inactive_because_);
}

}  // namespace warden::dataplane::stages
