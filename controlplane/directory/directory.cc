#include "controlplane/directory/directory.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "nlohmann/json.hpp"
#include "common/names.h"

namespace warden::controlplane::directory {
namespace {

using store::Column;
using warden::v1::DirectoryChange;
using warden::v1::DirectoryEntry;
using warden::v1::DirectoryGroup;
using warden::v1::DirectoryUser;

int64_t UnixMillis(absl::Time t) { return absl::ToUnixMillis(t); }

// A random id in the UUID text form SCIM clients are used to.
absl::StatusOr<std::string> NewId() {
  auto bytes = crypto::RandomBytes(16);
  if (!bytes.ok()) return bytes.status();
  const std::string hex = crypto::HexEncode(*bytes);
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-",
                      hex.substr(12, 4), "-", hex.substr(16, 4), "-",
                      hex.substr(20));
}

// A new record (`old` null) gets an id, its creation time and version 1;
// a replacement keeps `old`'s creation time and bumps the version. Both
// are modified now.
template <typename Record>
absl::Status Stamp(const Record* old, absl::Time now, Record* record) {
  if (old == nullptr) {
    auto id = NewId();
    if (!id.ok()) return id.status();
    record->set_id(*id);
    record->set_created_unix_ms(UnixMillis(now));
    record->set_version(1);
  } else {
    record->set_created_unix_ms(old->created_unix_ms());
    record->set_version(old->version() + 1);
  }
  record->set_modified_unix_ms(UnixMillis(now));
  return absl::OkStatus();
}

template <typename Message>
absl::StatusOr<Message> Parse(const std::string& bytes, absl::string_view key) {
  Message m;
  if (!m.ParseFromString(bytes)) {
    return absl::DataLossError(
        absl::StrCat("directory record ", key, " does not parse"));
  }
  return m;
}

constexpr char kEnterprise[] =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

// The attributes policies can match, read from a user's SCIM resource
// (names as SCIM spells them; attribute names are case-insensitive).
void AddAttributes(const std::string& resource_json, DirectoryEntry* entry) {
  const nlohmann::json resource =
      nlohmann::json::parse(resource_json, nullptr, false);
  if (!resource.is_object()) return;
  const auto take = [&](const nlohmann::json& object,
                        std::initializer_list<const char*> names) {
    if (!object.is_object()) return;
    for (auto it = object.begin(); it != object.end(); ++it) {
      for (const char* name : names) {
        if (absl::EqualsIgnoreCase(it.key(), name) && it->is_string() &&
            !it->get<std::string>().empty()) {
          (*entry->mutable_attributes())[name] = it->get<std::string>();
        }
      }
    }
  };
  take(resource, {"title", "userType"});
  for (auto it = resource.begin(); it != resource.end(); ++it) {
    if (absl::EqualsIgnoreCase(it.key(), kEnterprise)) {
      take(*it, {"department", "organization", "division", "costCenter",
                 "employeeNumber"});
    }
  }
}

}  // namespace

Directory::Directory(state::StateMachine* state, const store::Store* store)
    : state_(state), store_(store) {}

absl::StatusOr<DirectoryUser> Directory::LoadUser(absl::string_view id) const {
  const std::string key = absl::StrCat(state::kDirectoryUserPrefix, id);
  auto bytes = store_->Get(Column::kDirectory, key);
  if (absl::IsNotFound(bytes.status())) {
    return absl::NotFoundError(absl::StrCat("no user with id ", id));
  }
  if (!bytes.ok()) return bytes.status();
  return Parse<DirectoryUser>(*bytes, key);
}

absl::StatusOr<DirectoryUser> Directory::GetUser(absl::string_view id) const {
  auto user = LoadUser(id);
  if (user.ok() && user->deleted()) {
    return absl::NotFoundError(absl::StrCat("user ", id, " was deleted"));
  }
  return user;
}

absl::StatusOr<DirectoryUser> Directory::FindUser(
    absl::string_view user_name) const {
  auto id = store_->Get(Column::kDirectory, state::DirectoryNameKey(user_name));
  if (absl::IsNotFound(id.status())) {
    return absl::NotFoundError(absl::StrCat("no user named ", user_name));
  }
  if (!id.ok()) return id.status();
  return GetUser(*id);
}

absl::StatusOr<std::vector<DirectoryUser>> Directory::AllUsers() const {
  auto rows = store_->Scan(Column::kDirectory, state::kDirectoryUserPrefix);
  if (!rows.ok()) return rows.status();
  std::vector<DirectoryUser> users;
  users.reserve(rows->size());
  for (const store::KeyValue& kv : *rows) {
    auto user = Parse<DirectoryUser>(kv.value, kv.key);
    if (!user.ok()) return user.status();
    users.push_back(*std::move(user));
  }
  return users;
}

absl::StatusOr<std::vector<DirectoryUser>> Directory::Users() const {
  auto all = AllUsers();
  if (!all.ok()) return all.status();
  std::vector<DirectoryUser> live;
  for (DirectoryUser& u : *all) {
    if (!u.deleted()) live.push_back(std::move(u));
  }
  std::sort(live.begin(), live.end(), [](const auto& a, const auto& b) {
    return a.user_name() < b.user_name();
  });
  return live;
}

absl::Status Directory::Commit(DirectoryChange change,
                               const std::string& actor) {
  change.set_actor(actor);
  warden::v1::LogEntry entry;
  *entry.mutable_directory() = std::move(change);
  const uint64_t before = state_->DirectoryChangesApplied();
  const absl::Status committed = state_->Commit(entry).status();
  const uint64_t after = state_->DirectoryChangesApplied();
  // The index has this change already (callers index before committing);
  // it is current if it was before and this was the only change applied.
  if (committed.ok() && names_indexed_ && indexed_changes_ == before &&
      after == before + 1) {
    indexed_changes_ = after;
  } else {
    names_indexed_ = false;
  }
  return committed;
}

absl::StatusOr<DirectoryUser> Directory::PutUser(DirectoryUser user,
                                                 const std::string& actor,
                                                 absl::Time now) {
  absl::MutexLock lock(&write_mu_);
  // SCIM writes what the identity provider says; an admin's hold stays.
  user.clear_admin_hold();
  user.clear_admin_hold_by();
  if (!user.id().empty()) {
    if (auto old = GetUser(user.id()); old.ok() && old->admin_hold()) {
      user.set_admin_hold(true);
      user.set_admin_hold_by(old->admin_hold_by());
    }
  }
  return PutUserLocked(std::move(user), actor, now);
}

absl::flat_hash_map<std::string, std::string> Directory::HeldNames(
    const std::vector<DirectoryUser>& users) {
  absl::flat_hash_map<std::string, std::string> held;  // name -> by whom
  for (const DirectoryUser& u : users) {
    if (!u.admin_hold()) continue;
    held[FoldName(u.user_name())] = u.admin_hold_by();
    for (const std::string& e : u.emails()) {
      const std::string folded = FoldName(e);
      bool released = false;
      for (const std::string& r : u.released_names()) {
        released = released || FoldName(r) == folded;
      }
      if (!released) held.emplace(folded, u.admin_hold_by());
    }
  }
  return held;
}

absl::StatusOr<Directory::SetActiveResult> Directory::SetActive(
    const std::string& user_name, bool active, const std::string& actor,
    absl::Time now) {
  absl::MutexLock lock(&write_mu_);
  SetActiveResult result;
  auto user = FindUser(user_name);
  const std::string name = FoldName(user_name);
  std::vector<DirectoryUser> all;  // read when the name is no userName
  if (absl::IsNotFound(user.status())) {
    // A name that is no userName but an e-mail of exactly one live user
    // names that person: an admin cuts someone off by the address they
    // know, and the person's other names must stop too (red team).
    auto read = AllUsers();
    if (!read.ok()) return read.status();
    all = *std::move(read);
    std::vector<const DirectoryUser*> owners;
    for (const DirectoryUser& u : all) {
      if (u.deleted()) continue;
      for (const std::string& e : u.emails()) {
        if (FoldName(e) == name) {
          owners.push_back(&u);
          break;
        }
      }
    }
    if (owners.size() == 1) {
      user = *owners[0];
      result.note = absl::StrCat(user_name, " is an e-mail of user ",
                                 owners[0]->user_name(), ": applied to them");
    }
  }
  if (!user.ok() && !absl::IsNotFound(user.status())) return user.status();

  if (active) {
    if (!user.ok()) {
      // Nothing live of that name: lift an admin's hold on its tombstones,
      // but a tombstone itself (the provider deleted or renamed the user)
      // stays refused; an admin does not bring back who the provider
      // removed (red team: activate re-admitted an offboarded user).
      auto lifted = LiftTombstoneHolds(user_name, actor, now);
      if (!lifted.ok()) return lifted.status();
      result.changed = *lifted;
      result.user.set_user_name(user_name);
      for (const DirectoryUser& t : all) {
        if (t.deleted() && FoldName(t.user_name()) == name) {
          result.refused = true;
          result.user = t;
          break;
        }
      }
      result.note = result.refused
                        ? absl::StrCat(user_name,
                                       " stays refused: the identity provider "
                                       "deleted it (or renamed a deactivated "
                                       "user away from it)")
                        : absl::StrCat(user_name,
                                       " had no hold: the directory does not "
                                       "know it");
      return result;
    }
    if (user->admin_hold() || (user->admin_record() && !user->active())) {
      user->set_admin_hold(false);
      user->set_admin_hold_by("");
      if (user->admin_record()) {
        user->set_active(true);
        nlohmann::json resource =
            nlohmann::json::parse(user->resource_json(), nullptr, false);
        if (!resource.is_object()) resource = nlohmann::json::object();
        resource["active"] = true;
        user->set_resource_json(resource.dump(
            -1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
      auto stored = PutUserLocked(*std::move(user), actor, now);
      if (!stored.ok()) return stored.status();
      user = *std::move(stored);
      result.changed = true;
    }
    auto lifted = LiftTombstoneHolds(user->user_name(), actor, now);
    if (!lifted.ok()) return lifted.status();
    result.changed = result.changed || *lifted;
    // The name typed, when it is the user's e-mail: a hold on it through a
    // deleted record is lifted too (red team pass 10: "activate z" named
    // the user who has e-mail z and never lifted z itself, so the advice
    // "activate that name as well" could not be followed).
    if (FoldName(user_name) != FoldName(user->user_name())) {
      auto also = LiftTombstoneHolds(user_name, actor, now);
      if (!also.ok()) return also.status();
      result.changed = result.changed || *also;
    }
    // Still held through one of its names, if another record (live or
    // deleted) holds that name (Entries): say which name to activate (red
    // team pass 9: a hold through a deleted record's name went unsaid).
    auto everyone = AllUsers();
    if (!everyone.ok()) return everyone.status();
    const auto held = HeldNames(*everyone);
    std::vector<std::string> names = {user->user_name()};
    names.insert(names.end(), user->emails().begin(), user->emails().end());
    for (const std::string& n : names) {
      auto hold = held.find(FoldName(n));
      if (hold == held.end()) continue;
      result.refused = true;
      result.note = absl::StrCat(
          result.note.empty() ? "" : absl::StrCat(result.note, "; "),
          n == user->user_name() ? "its name " : "its e-mail ", n,
          " is held too (by ", hold->second.empty() ? "an admin" : hold->second,
          "): activate that name as well");
    }
    if (!user->active()) {
      result.refused = true;
      result.note = absl::StrCat(
          result.note.empty() ? "" : absl::StrCat(result.note, "; "),
          "the identity provider has ", user->user_name(),
          " deactivated: proxies refuse them until it activates them");
    }
    result.user = *std::move(user);
    return result;
  }

  // Deactivate: a hold, which the provider's writes do not lift. A
  // provider's user keeps its `active` (the provider's word); a name no
  // provider wrote gets a record of the admin's own.
  result.refused = true;
  if (!user.ok()) {
    result.created = true;
    DirectoryUser record;
    record.set_user_name(user_name);
    record.set_admin_record(true);
    record.set_active(false);
    record.set_admin_hold(true);
    record.set_admin_hold_by(actor);
    record.set_resource_json(
        nlohmann::json({{"userName", user_name}, {"active", false}})
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    auto stored = PutUserLocked(std::move(record), actor, now);
    if (!stored.ok()) return stored.status();
    result.user = *std::move(stored);
    result.changed = true;
    return result;
  }
  if (user->admin_hold()) {
    result.user = *std::move(user);
    return result;
  }
  user->set_admin_hold(true);
  user->set_admin_hold_by(actor);
  if (user->admin_record()) user->set_active(false);
  auto stored = PutUserLocked(*std::move(user), actor, now);
  if (!stored.ok()) return stored.status();
  result.user = *std::move(stored);
  result.changed = true;
  return result;
}

absl::StatusOr<bool> Directory::LiftTombstoneHolds(const std::string& user_name,
                                                   const std::string& actor,
                                                   absl::Time now) {
  // The hold is on the name: lift it from the name's tombstones too.
  auto all = AllUsers();
  if (!all.ok()) return all.status();
  const std::string name = FoldName(user_name);
  bool lifted = false;
  for (DirectoryUser& t : *all) {
    if (!t.deleted() || !t.admin_hold()) continue;
    if (FoldName(t.user_name()) != name) {
      // One of its e-mails: the hold is lifted from that name only; the
      // record's other names stay held (red team pass 8: activating the
      // new user who took a held person's e-mail released the person).
      bool named = false;
      for (const std::string& e : t.emails()) {
        named = named || FoldName(e) == name;
      }
      bool released = false;
      for (const std::string& r : t.released_names()) {
        released = released || FoldName(r) == name;
      }
      if (!named || released) continue;
      t.add_released_names(name);
      t.set_version(t.version() + 1);
      t.set_modified_unix_ms(UnixMillis(now));
      DirectoryChange change;
      *change.mutable_put_user() = std::move(t);
      if (absl::Status s = Commit(std::move(change), actor); !s.ok()) return s;
      lifted = true;
      continue;
    }
    t.set_admin_hold(false);
    t.set_admin_hold_by("");
    t.set_version(t.version() + 1);
    t.set_modified_unix_ms(UnixMillis(now));
    DirectoryChange change;
    *change.mutable_put_user() = std::move(t);
    if (absl::Status s = Commit(std::move(change), actor); !s.ok()) return s;
    lifted = true;
  }
  return lifted;
}

absl::StatusOr<std::vector<std::string>> Directory::GroupsOf(
    absl::string_view user_id) const {
  auto groups = Groups();
  if (!groups.ok()) return groups.status();
  std::vector<std::string> names;
  for (const DirectoryGroup& g : *groups) {
    for (const std::string& member : g.member_ids()) {
      if (member == user_id) {
        names.push_back(g.display_name());
        break;
      }
    }
  }
  return names;
}

absl::StatusOr<DirectoryUser> Directory::PutUserLocked(DirectoryUser user,
                                                       const std::string& actor,
                                                       absl::Time now) {
  if (user.user_name().empty()) {
    return absl::InvalidArgumentError("userName is required");
  }
  auto holder = FindUser(user.user_name());
  if (holder.ok() && holder->id() != user.id() && holder->admin_record() &&
      !user.admin_record()) {
    // The provider now writes a name an admin cut off before it was
    // provisioned: the admin's record becomes a tombstone that keeps the
    // hold on the name (red team: the provider's POST got 409).
    holder->set_deleted(true);
    holder->set_active(false);
    holder->set_version(holder->version() + 1);
    holder->set_modified_unix_ms(UnixMillis(now));
    DirectoryChange change;
    *change.mutable_put_user() = *holder;
    if (absl::Status s = Commit(std::move(change), actor); !s.ok()) return s;
    holder = absl::NotFoundError("adopted");
  }
  if (holder.ok() && holder->id() != user.id()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "userName ", user.user_name(), " is taken by user ", holder->id()));
  }
  if (!holder.ok() && !absl::IsNotFound(holder.status())) {
    return holder.status();
  }
  absl::StatusOr<DirectoryUser> old;
  const DirectoryUser* previous = nullptr;  // null: a new user
  if (!user.id().empty()) {
    old = GetUser(user.id());
    if (!old.ok()) return old.status();
    previous = &*old;
  }
  // (An admin's cut-off record is never refused: stopping a name comes
  // first, whatever it looks like.)
  if (!user.admin_record()) {
    if (absl::Status s = CheckNamesLookDistinct(user, previous); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = Stamp(previous, now, &user); !s.ok()) return s;
  user.set_deleted(false);
  if (absl::Status s = TrackNameHoldersLocked(&user, previous, actor, now);
      !s.ok()) {
    return s;
  }
  // A renamed user who is deactivated (or held by an admin) leaves the old
  // name behind as a tombstone: tokens and certificates issued for it may
  // still be valid, and must stay refused (red team: a SCIM rename let
  // them in again).
  // The same for an e-mail alias such a user loses.
  if (previous != nullptr && (!previous->active() || previous->admin_hold())) {
    std::set<std::string> kept = {FoldName(user.user_name())};
    for (const std::string& e : user.emails()) {
      kept.insert(FoldName(e));
    }
    std::set<std::string> dropped;
    for (const std::string& name :
         [&] {
           std::vector<std::string> names = {previous->user_name()};
           names.insert(names.end(), previous->emails().begin(),
                        previous->emails().end());
           return names;
         }()) {
      const std::string lower = FoldName(name);
      if (!lower.empty() && kept.count(lower) == 0) dropped.insert(lower);
    }
    for (const std::string& name : dropped) {
      DirectoryUser tombstone;
      tombstone.set_user_name(name);
      tombstone.set_active(false);
      tombstone.set_deleted(true);
      tombstone.set_admin_hold(previous->admin_hold());
      tombstone.set_admin_hold_by(previous->admin_hold_by());
      tombstone.set_resource_json(
          nlohmann::json({{"userName", name}, {"active", false}})
              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      if (absl::Status s = Stamp<DirectoryUser>(nullptr, now, &tombstone);
          !s.ok()) {
        return s;
      }
      if (names_indexed_) IndexNamesLocked(tombstone);
      DirectoryChange change;
      *change.mutable_put_user() = std::move(tombstone);
      if (absl::Status s = Commit(std::move(change), actor); !s.ok()) {
        names_indexed_ = false;  // read again next time
        return s;
      }
    }
  }
  if (names_indexed_) IndexNamesLocked(user);
  DirectoryChange change;
  *change.mutable_put_user() = user;
  if (absl::Status s = Commit(std::move(change), actor); !s.ok()) {
    names_indexed_ = false;
    return s;
  }
  return user;
}

void Directory::IndexNamesLocked(const DirectoryUser& user) {
  // Its previous names out, its names now in.
  auto old = indexed_names_.find(user.id());
  if (old != indexed_names_.end()) {
    for (const std::string& key : old->second) {
      auto bucket = names_by_skeleton_.find(key);
      if (bucket == names_by_skeleton_.end()) continue;
      auto& refs = bucket->second;
      refs.erase(std::remove_if(refs.begin(), refs.end(),
                                [&](const IndexedName& r) {
                                  return r.id == user.id();
                                }),
                 refs.end());
      if (refs.empty()) names_by_skeleton_.erase(bucket);
    }
    indexed_names_.erase(old);
  }
  std::vector<std::string> names = {user.user_name()};
  names.insert(names.end(), user.emails().begin(), user.emails().end());
  std::vector<std::string>& keys = indexed_names_[user.id()];
  const auto held = [&](const std::string& folded) {
    auto [it, added] = ever_held_.try_emplace(folded, user.id());
    if (!added && it->second != user.id()) it->second = "*";
  };
  for (const auto& [given_up, when] : user.names_given_up_unix_ms()) {
    held(given_up);
  }
  for (const std::string& name : names) {
    const std::string folded = FoldName(name);
    if (!folded.empty()) held(folded);
    for (std::string& key : NameSkeletons(name)) {
      names_by_skeleton_[key].push_back(IndexedName{folded, name, user.id()});
      keys.push_back(std::move(key));
    }
  }
}

absl::Status Directory::EnsureNamesIndexedLocked() {
  const uint64_t changes = state_->DirectoryChangesApplied();
  if (names_indexed_ && indexed_changes_ == changes) return absl::OkStatus();
  // Counted before the records are read: a change applied during the read
  // makes the next call read them again.
  auto all = AllUsers();
  if (!all.ok()) return all.status();
  names_by_skeleton_.clear();
  indexed_names_.clear();
  ever_held_.clear();
  for (const DirectoryUser& u : *all) IndexNamesLocked(u);
  names_indexed_ = true;
  indexed_changes_ = changes;
  return absl::OkStatus();
}

namespace {

// A record's names, lower-case.
std::set<std::string> FoldedNames(const DirectoryUser& user) {
  std::set<std::string> names;
  if (std::string n = FoldName(user.user_name()); !n.empty()) {
    names.insert(std::move(n));
  }
  for (const std::string& e : user.emails()) {
    if (std::string n = FoldName(e); !n.empty()) names.insert(std::move(n));
  }
  return names;
}

// Names a record remembers giving up: enough for any real identity
// provider; past it the oldest are forgotten (and a record taking one of
// those later is not told it had a holder).
constexpr int kMaxGivenUpNames = 1000;

}  // namespace

absl::Status Directory::TrackNameHoldersLocked(DirectoryUser* user,
                                               const DirectoryUser* previous,
                                               const std::string& actor,
                                               absl::Time now) {
  // What the directory knows about the record's names comes from its
  // stored version, never from the writer (SCIM sends none of it).
  user->clear_names_taken_unix_ms();
  user->clear_names_given_up_unix_ms();
  const std::set<std::string> names = FoldedNames(*user);
  std::set<std::string> had;
  if (previous != nullptr) {
    had = FoldedNames(*previous);
    for (const auto& [name, when] : previous->names_taken_unix_ms()) {
      if (names.count(name) != 0) (*user->mutable_names_taken_unix_ms())[name] = when;
    }
    for (const auto& [name, when] : previous->names_given_up_unix_ms()) {
      if (names.count(name) == 0) {
        (*user->mutable_names_given_up_unix_ms())[name] = when;
      }
    }
  }
  std::vector<std::string> added;
  std::vector<std::string> dropped;
  for (const std::string& n : names) {
    if (had.count(n) == 0) added.push_back(n);
  }
  for (const std::string& n : had) {
    if (names.count(n) == 0) dropped.push_back(n);
  }
  if (added.empty() && dropped.empty()) return absl::OkStatus();
  if (absl::Status s = EnsureNamesIndexedLocked(); !s.ok()) return s;
  const int64_t now_ms = UnixMillis(now);
  // A name another record has or had changes hands now (renamed away,
  // taken by another, renamed back: red team pass 9); one this record
  // alone ever held comes back to it unchanged (pass 10).
  for (const std::string& n : added) {
    auto it = ever_held_.find(n);
    if (it != ever_held_.end() && it->second != user->id()) {
      (*user->mutable_names_taken_unix_ms())[n] = now_ms;
    }
  }
  auto& given_up = *user->mutable_names_given_up_unix_ms();
  for (const std::string& n : dropped) given_up[n] = now_ms;
  while (given_up.size() > static_cast<size_t>(kMaxGivenUpNames)) {
    auto oldest = given_up.begin();
    for (auto it = given_up.begin(); it != given_up.end(); ++it) {
      if (it->second < oldest->second) oldest = it;
    }
    given_up.erase(oldest);
  }
  // A dropped name other live users still carry (an e-mail two records
  // shared, refused as ambiguous until now) names only them from now on:
  // credentials for it issued so far may be the dropping user's (red team
  // pass 9: an alias moved from one active user to another).
  std::set<std::string> others;
  for (const std::string& n : dropped) {
    for (const std::string& key : NameSkeletons(n)) {
      auto bucket = names_by_skeleton_.find(key);
      if (bucket == names_by_skeleton_.end()) continue;
      for (const IndexedName& r : bucket->second) {
        if (r.folded == n && r.id != user->id()) others.insert(r.id);
      }
    }
  }
  for (const std::string& id : others) {
    auto other = GetUser(id);  // live ones only
    if (!other.ok()) {
      if (absl::IsNotFound(other.status())) continue;
      return other.status();
    }
    const std::set<std::string> theirs = FoldedNames(*other);
    bool changed = false;
    for (const std::string& n : dropped) {
      if (theirs.count(n) == 0) continue;
      (*other->mutable_names_taken_unix_ms())[n] = now_ms;
      changed = true;
    }
    if (!changed) continue;
    other->set_version(other->version() + 1);
    other->set_modified_unix_ms(now_ms);
    DirectoryChange change;
    *change.mutable_put_user() = *std::move(other);
    if (absl::Status s = Commit(std::move(change), actor); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Directory::CheckNamesLookDistinct(
    const DirectoryUser& user, const DirectoryUser* previous) {
  // Only names this write adds: a provider re-sending a user as it was
  // costs nothing, and names let in before stay.
  // Spellings, not folded names: a change of case is a new spelling
  // (red team pass 10: "WIII" renamed to "wiII" next to "will").
  std::set<std::string> had;
  if (previous != nullptr) {
    had.insert(previous->user_name());
    had.insert(previous->emails().begin(), previous->emails().end());
  }
  std::vector<std::string> added;
  if (had.count(user.user_name()) == 0) added.push_back(user.user_name());
  for (const std::string& e : user.emails()) {
    if (had.count(e) == 0) added.push_back(e);
  }
  if (added.empty()) return absl::OkStatus();
  // Every record's names by skeleton, the deleted and deactivated ones'
  // too (a look-alike of a name someone was cut off under is the one to
  // stop): read once, then kept up to date by every write of a user
  // (IndexNamesLocked), so a write costs its own names' lookups, not a
  // scan of the directory (red team pass 8: 0.13 s a write at 3,000 users,
  // under the write lock).
  if (absl::Status s = EnsureNamesIndexedLocked(); !s.ok()) return s;
  for (const std::string& name : added) {
    const std::string folded = FoldName(name);
    const IndexedName* like = nullptr;
    // Another record has this very spelling: the name is no new sight,
    // whatever else looks like it (two existing names that collide were
    // both let in before). The same name in another case is a new sight
    // (red team pass 10: "BIII" created, deleted, then "biII" next to
    // "bill").
    bool known = false;
    for (const std::string& key : NameSkeletons(name)) {
      auto bucket = names_by_skeleton_.find(key);
      if (bucket == names_by_skeleton_.end()) continue;
      for (const IndexedName& r : bucket->second) {
        if (!user.id().empty() && r.id == user.id()) continue;
        if (r.folded == folded) {
          known = known || r.name == name;
        } else if (like == nullptr) {
          like = &r;
        }
      }
    }
    if (known || like == nullptr) continue;
    return absl::AlreadyExistsError(absl::StrCat(
        name == user.user_name() ? "userName " : "e-mail ", name,
        " looks like ", like->name, " of user ", like->id,
        " (Unicode confusables, UTS #39) and would pass for that person "
        "on screen and in the audit trail; rename one of them"));
  }
  return absl::OkStatus();
}

absl::Status Directory::DeleteUser(absl::string_view id,
                                   const std::string& actor, absl::Time now) {
  absl::MutexLock lock(&write_mu_);
  auto user = GetUser(id);
  if (!user.ok()) return user.status();
  user->set_deleted(true);
  user->set_active(false);
  user->set_version(user->version() + 1);
  user->set_modified_unix_ms(UnixMillis(now));
  DirectoryChange change;
  *change.mutable_put_user() = *std::move(user);
  return Commit(std::move(change), actor);
}

absl::StatusOr<DirectoryGroup> Directory::GetGroup(absl::string_view id) const {
  const std::string key = absl::StrCat(state::kDirectoryGroupPrefix, id);
  auto bytes = store_->Get(Column::kDirectory, key);
  if (absl::IsNotFound(bytes.status())) {
    return absl::NotFoundError(absl::StrCat("no group with id ", id));
  }
  if (!bytes.ok()) return bytes.status();
  auto group = Parse<DirectoryGroup>(*bytes, key);
  if (!group.ok()) return group.status();
  // Members deleted since drop out.
  DirectoryGroup live = *group;
  live.clear_member_ids();
  for (const std::string& member : group->member_ids()) {
    if (GetUser(member).ok()) live.add_member_ids(member);
  }
  return live;
}

absl::StatusOr<std::vector<DirectoryGroup>> Directory::Groups() const {
  auto users = AllUsers();
  if (!users.ok()) return users.status();
  return GroupsWithLiveMembers(*users);
}

absl::StatusOr<std::vector<DirectoryGroup>> Directory::GroupsWithLiveMembers(
    const std::vector<DirectoryUser>& users) const {
  absl::flat_hash_set<absl::string_view> live;
  for (const DirectoryUser& u : users) {
    if (!u.deleted()) live.insert(u.id());
  }
  auto rows = store_->Scan(Column::kDirectory, state::kDirectoryGroupPrefix);
  if (!rows.ok()) return rows.status();
  std::vector<DirectoryGroup> groups;
  groups.reserve(rows->size());
  for (const store::KeyValue& kv : *rows) {
    auto group = Parse<DirectoryGroup>(kv.value, kv.key);
    if (!group.ok()) return group.status();
    // Members deleted since drop out.
    auto* ids = group->mutable_member_ids();
    ids->erase(std::remove_if(ids->begin(), ids->end(),
                              [&](const std::string& id) {
                                return !live.contains(id);
                              }),
               ids->end());
    groups.push_back(*std::move(group));
  }
  std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
    return a.display_name() < b.display_name();
  });
  return groups;
}

absl::StatusOr<DirectoryGroup> Directory::PutGroup(DirectoryGroup group,
                                                   const std::string& actor,
                                                   absl::Time now) {
  if (group.display_name().empty()) {
    return absl::InvalidArgumentError("displayName is required");
  }
  absl::MutexLock lock(&write_mu_);
  auto groups = Groups();
  if (!groups.ok()) return groups.status();
  const std::string name = FoldName(group.display_name());
  const DirectoryGroup* old = nullptr;
  for (const DirectoryGroup& g : *groups) {
    if (g.id() == group.id()) old = &g;
    if (g.id() != group.id() && FoldName(g.display_name()) == name) {
      return absl::AlreadyExistsError(absl::StrCat(
          "displayName ", group.display_name(), " is taken by group ", g.id()));
    }
  }
  // A group named like another ("dbа" with a Cyrillic a next to "dba")
  // would read as that group in policies' reviews and in the audit trail.
  // Checked whenever the spelling changes, a change of case too (red team
  // pass 10: "AII-STAFF" renamed to "aII-staff" next to "all-staff").
  if (old == nullptr || old->display_name() != group.display_name()) {
    for (const DirectoryGroup& g : *groups) {
      if (g.id() != group.id() &&
          NamesLookAlike(g.display_name(), group.display_name())) {
        return absl::AlreadyExistsError(absl::StrCat(
            "displayName ", group.display_name(), " looks like ",
            g.display_name(), " of group ", g.id(),
            " (Unicode confusables, UTS #39); rename one of them"));
      }
    }
  }
  // Members: live users, each once, in the order given.
  absl::flat_hash_set<std::string> seen;
  DirectoryGroup stored = group;
  stored.clear_member_ids();
  for (const std::string& member : group.member_ids()) {
    if (!seen.insert(member).second) continue;
    if (!GetUser(member).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("member ", member, " is not a user of this directory"));
    }
    stored.add_member_ids(member);
  }
  if (!group.id().empty() && old == nullptr) {
    return absl::NotFoundError(absl::StrCat("no group with id ", group.id()));
  }
  if (absl::Status s = Stamp(old, now, &stored); !s.ok()) return s;
  DirectoryChange change;
  *change.mutable_put_group() = stored;
  if (absl::Status s = Commit(std::move(change), actor); !s.ok()) return s;
  return stored;
}

absl::Status Directory::DeleteGroup(absl::string_view id,
                                    const std::string& actor) {
  absl::MutexLock lock(&write_mu_);
  if (auto group = GetGroup(id); !group.ok()) return group.status();
  DirectoryChange change;
  change.set_delete_group(std::string(id));
  return Commit(std::move(change), actor);
}

absl::StatusOr<std::vector<DirectoryEntry>> Directory::Entries() const {
  auto users = AllUsers();
  if (!users.ok()) return users.status();
  auto groups = GroupsWithLiveMembers(*users);
  if (!groups.ok()) return groups.status();
  absl::flat_hash_map<std::string, std::set<std::string>> groups_of;
  for (const DirectoryGroup& g : *groups) {
    for (const std::string& member : g.member_ids()) {
      groups_of[member].insert(g.display_name());
    }
  }
  // Names an admin's hold is on, whichever record carries them now: a
  // deletion and a new user of the same name (red team), or a rename, do
  // not lift it; only `wardenctl identities activate` does.
  // Every name of a held record, its e-mails too: a hold typed as an
  // e-mail and applied to its owner must not end when the provider deletes
  // the owner and creates a user under that e-mail (red team pass 7).
  const absl::flat_hash_map<std::string, std::string> held = HeldNames(*users);
  // Names a deleted record carries (a deleted or renamed user's, an alias
  // a provider removed): a live user holding one now took it over.
  absl::flat_hash_set<std::string> tombstoned;
  for (const DirectoryUser& u : *users) {
    if (!u.deleted()) continue;
    tombstoned.insert(FoldName(u.user_name()));
    for (const std::string& e : u.emails()) tombstoned.insert(FoldName(e));
  }
  // By lower-case userName; a live user wins over a tombstone of the name.
  std::map<std::string, DirectoryEntry> entries;
  for (const DirectoryUser& u : *users) {
    const std::string name = FoldName(u.user_name());
    auto it = entries.find(name);
    if (it != entries.end() && u.deleted()) continue;
    DirectoryEntry entry;
    entry.set_user_name(name);
    // Held by its userName or by any of its e-mails: a user the provider
    // gave a held name as an e-mail is the person that name was cut off
    // under (a hold placed before provisioning, red team pass 7), until
    // an admin activates the name.
    auto hold = held.find(name);
    for (const std::string& email : u.emails()) {
      if (hold != held.end()) break;
      hold = held.find(FoldName(email));
    }
    entry.set_active(u.active() && !u.deleted() && !u.admin_hold() &&
                     hold == held.end());
    if (hold != held.end() || u.admin_hold()) {
      const std::string& by =
          hold != held.end() ? hold->second : u.admin_hold_by();
      entry.set_admin_hold(true);
      entry.set_inactive_because(absl::StrCat(
          "deactivated by an administrator",
          by.empty() ? "" : absl::StrCat(" (", by, ")"),
          " with wardenctl identities deactivate"));
    } else if (u.deleted()) {
      entry.set_inactive_because("deleted by the identity provider (SCIM)");
    } else if (!u.active()) {
      entry.set_inactive_because("deactivated by the identity provider (SCIM)");
    }
    std::set<std::string> aliases;
    for (const std::string& email : u.emails()) {
      std::string alias = FoldName(email);
      if (!alias.empty() && alias != name) aliases.insert(std::move(alias));
    }
    for (const std::string& a : aliases) entry.add_aliases(a);
    // As the provider wrote them, where that is not their lower case.
    std::set<std::string> written;
    if (u.user_name() != name) written.insert(u.user_name());
    for (const std::string& email : u.emails()) {
      if (email != FoldName(email)) written.insert(email);
    }
    for (const std::string& w : written) entry.add_written_names(w);
    if (!u.deleted()) {
      for (const std::string& g : groups_of[u.id()]) entry.add_groups(g);
      AddAttributes(u.resource_json(), &entry);
      for (const auto& [taken, when] : u.names_taken_unix_ms()) {
        if (taken == name || aliases.count(taken) != 0) {
          (*entry.mutable_names_reused_unix_ms())[taken] = when;
        }
      }
      // Written before names_taken existed: the tombstone says the name
      // had a holder, the creation time when this user took it.
      if (tombstoned.contains(name) &&
          !entry.names_reused_unix_ms().contains(name)) {
        entry.set_name_reused_unix_ms(u.created_unix_ms());
      }
    }
    entries[name] = std::move(entry);
  }
  std::vector<DirectoryEntry> out;
  out.reserve(entries.size());
  for (auto& [name, entry] : entries) out.push_back(std::move(entry));
  return out;
}

}  // namespace warden::controlplane::directory
