// The directory and its SCIM 2.0 protocol, on a real store and log: users
// and groups as Okta's and Entra ID's provisioning send them, what bundles
// carry, and replay of the log.
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/crypto.h"
#include "controlplane/bundles/bundles.h"
#include "controlplane/directory/directory.h"
#include "controlplane/log/rocksdb_log.h"
#include "controlplane/scim/patch.h"
#include "controlplane/scim/scim.h"
#include "controlplane/server/coalescer.h"
#include "controlplane/state/state_machine.h"
#include "controlplane/store/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace warden::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

const absl::Time kNow = absl::FromUnixSeconds(1790000000);
constexpr char kPatch[] = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
constexpr char kEnterprise[] =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

class ScimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "/scim_" + info->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Open();
  }
  void Open() {
    auto log = log::RocksDbLog::Open(dir_ + "/log");
    auto store = store::Store::Open(dir_ + "/state");
    ASSERT_TRUE(log.ok() && store.ok());
    log_ = std::move(*log);
    store_ = std::move(*store);
    state_ = std::make_unique<state::StateMachine>(log_.get(), store_.get());
    ASSERT_TRUE(state_->CatchUp().ok());
    directory_ = std::make_unique<directory::Directory>(state_.get(),
                                                        store_.get());
    service_ = std::make_unique<scim::Service>(
        directory_.get(),
        [](absl::string_view token) -> absl::StatusOr<std::string> {
          if (token == "good") return std::string("okta");
          if (token == "reader") {
            return absl::PermissionDeniedError("token reader lacks scim");
          }
          if (token == "unconfirmed") {  // a replica cut off from etcd
            return absl::UnavailableError(
                "cannot check the token against the cluster's latest state");
          }
          return absl::UnauthenticatedError("unknown token");
        },
        [this](const scim::Change& c) {
          changes_.push_back(c.action + " " + c.target);
        });
  }
  void Close() {
    service_.reset();
    directory_.reset();
    state_.reset();
    store_.reset();
    log_.reset();
  }

  struct Reply {
    int status;
    Json body;
    std::string location;
  };
  Reply Call(const std::string& method, const std::string& path,
             const Json& body = Json(), const std::string& token = "good",
             std::map<std::string, std::string> query = {}) {
    scim::Request r;
    r.method = method;
    r.path = "/scim/v2" + path;
    r.query = std::move(query);
    if (!body.is_null()) r.body = body.dump();
    r.authorization = token.empty() ? "" : "Bearer " + token;
    r.base_url = "https://warden.test/scim/v2";
    scim::Response response = service_->Handle(r, now_);
    Json parsed = response.body.empty()
                      ? Json()
                      : Json::parse(response.body, nullptr, false);
    return Reply{response.status, parsed, response.location};
  }
  // A body as bytes: building a deeply nested Json to dump would itself
  // recurse.
  Reply CallRaw(const std::string& method, const std::string& path,
                std::string body) {
    scim::Request r;
    r.method = method;
    r.path = "/scim/v2" + path;
    r.body = std::move(body);
    r.authorization = "Bearer good";
    r.base_url = "https://warden.test/scim/v2";
    scim::Response response = service_->Handle(r, now_);
    return Reply{response.status, Json::parse(response.body, nullptr, false),
                 response.location};
  }
  std::string CreateUser(const std::string& name, Json extra = Json::object()) {
    Json body = {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                 {"userName", name}};
    body.update(extra);
    Reply r = Call("POST", "/Users", body);
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return r.body.value("id", "");
  }
  std::string CreateGroup(const std::string& name) {
    Reply r = Call("POST", "/Groups", {{"displayName", name}});
    EXPECT_EQ(r.status, 201) << r.body.dump();
    return r.body.value("id", "");
  }
  std::vector<std::string> Members(const std::string& gid) {
    std::vector<std::string> ids;
    const Reply group = Call("GET", "/Groups/" + gid);
    for (const Json& m : group.body["members"]) {
      ids.push_back(m["value"]);
    }
    return ids;
  }

  absl::Time now_ = kNow;  // what the service is told the time is
  std::string dir_;
  std::unique_ptr<log::RocksDbLog> log_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<state::StateMachine> state_;
  std::unique_ptr<directory::Directory> directory_;
  std::unique_ptr<scim::Service> service_;
  std::vector<std::string> changes_;
};

TEST_F(ScimTest, RefusesCallersWithoutAScimToken) {
  EXPECT_EQ(Call("GET", "/Users", Json(), "").status, 401);
  EXPECT_EQ(Call("GET", "/Users", Json(), "bad").status, 401);
  Reply r = Call("GET", "/Users", Json(), "reader");
  EXPECT_EQ(r.status, 403);
  EXPECT_THAT(r.body["detail"].get<std::string>(), HasSubstr("lacks scim"));
  EXPECT_EQ(r.body["status"], "403");  // SCIM errors carry it as a string
  // A token that cannot be checked now: 503, retried by the provider, not
  // 401, which it may take for revoked credentials (red team).
  r = Call("GET", "/Users", Json(), "unconfirmed");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body["detail"].get<std::string>(), HasSubstr("cannot check"));
}

TEST_F(ScimTest, CreatesFindsAndRefusesDuplicateUsers) {
  const std::string id = CreateUser(
      "Alice@Example.com",
      {{"emails", {{{"value", "alice@example.com"}, {"type", "work"}}}},
       {"externalId", "00u1"}});
  Reply dup = Call("POST", "/Users", {{"userName", "alice@example.com"}});
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(dup.body["scimType"], "uniqueness");
  Reply found = Call("GET", "/Users", Json(), "good",
                     {{"filter", "userName eq \"ALICE@example.COM\""}});
  ASSERT_EQ(found.body["totalResults"], 1);
  EXPECT_EQ(found.body["Resources"][0]["id"], id);
  EXPECT_EQ(found.body["Resources"][0]["meta"]["version"], "W/\"1\"");
  EXPECT_EQ(Call("GET", "/Users", Json(), "good",
                 {{"filter", "externalId eq \"00u1\""}})
                .body["totalResults"],
            1);
  EXPECT_EQ(Call("GET", "/Users", Json(), "good",
                 {{"filter", "emails[type eq \"work\"].value eq "
                             "\"alice@example.com\""}})
                .body["totalResults"],
            1);
  EXPECT_EQ(Call("GET", "/Users", Json(), "good",
                 {{"filter", "userName eq \"nobody\""}})
                .body["totalResults"],
            0);
  Reply bad = Call("GET", "/Users", Json(), "good",
                   {{"filter", "userName sw \"a\""}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["scimType"], "invalidFilter");
  EXPECT_EQ(Call("POST", "/Users", {{"name", {{"givenName", "x"}}}}).status,
            400);
  scim::Request garbage;
  garbage.method = "POST";
  garbage.path = "/scim/v2/Users";
  garbage.body = "{not json";
  garbage.authorization = "Bearer good";
  EXPECT_EQ(service_->Handle(garbage, kNow).status, 400);
  EXPECT_EQ(Call("GET", "/Users/no-such-id").status, 404);
  EXPECT_THAT(changes_, ElementsAre("directory.user.create Alice@Example.com"));
}

TEST_F(ScimTest, PaginatesLists) {
  for (int i = 0; i < 5; ++i) CreateUser(absl::StrCat("u", i));
  Reply page = Call("GET", "/Users", Json(), "good",
                    {{"startIndex", "2"}, {"count", "2"}});
  EXPECT_EQ(page.body["totalResults"], 5);
  EXPECT_EQ(page.body["itemsPerPage"], 2);
  EXPECT_EQ(page.body["Resources"][0]["userName"], "u1");
  EXPECT_EQ(page.body["Resources"][1]["userName"], "u2");
}

TEST_F(ScimTest, AppliesOktaAndEntraPatchShapes) {
  const std::string id = CreateUser(
      "bob@example.com", {{"name", {{"givenName", "Bob"}}},
                          {kEnterprise, {{"department", "Ops"}}}});
  // Okta: no path, an object value.
  Reply r = Call("PATCH", "/Users/" + id,
                 {{"schemas", {kPatch}},
                  {"Operations",
                   {{{"op", "replace"}, {"value", {{"active", false}}}}}}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["active"], false);
  // Entra ID: capitalized ops, "True" as a string, paths with a filter and
  // a schema URN.
  r = Call("PATCH", "/Users/" + id,
           {{"schemas", {kPatch}},
            {"Operations",
             {{{"op", "Replace"}, {"path", "active"}, {"value", "True"}},
              {{"op", "Add"},
               {"path", "emails[type eq \"work\"].value"},
               {"value", "bob@example.com"}},
              {{"op", "Replace"},
               {"path", std::string(kEnterprise) + ":department"},
               {"value", "Security"}},
              {{"op", "Replace"}, {"path", "name.givenName"}, {"value", "Rob"}},
              {{"op", "Remove"}, {"path", "name.familyName"}}}}});
  ASSERT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["active"], true);
  EXPECT_EQ(r.body["emails"][0]["type"], "work");
  EXPECT_EQ(r.body["emails"][0]["value"], "bob@example.com");
  EXPECT_EQ(r.body[kEnterprise]["department"], "Security");
  EXPECT_EQ(r.body["name"]["givenName"], "Rob");
  EXPECT_EQ(r.body["meta"]["version"], "W/\"3\"");
  // Policies can match the department, as the bundle carries it.
  auto entries = directory_->Entries();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1);
  EXPECT_TRUE((*entries)[0].active());
  EXPECT_THAT((*entries)[0].aliases(), ElementsAre());  // same as userName
  EXPECT_EQ((*entries)[0].attributes().at("department"), "Security");
  // Bad operations are refused and change nothing.
  r = Call("PATCH", "/Users/" + id,
           {{"Operations", {{{"op", "move"}, {"path", "active"}}}}});
  EXPECT_EQ(r.status, 400);
  r = Call("PATCH", "/Users/" + id, {{"Operations", Json::array()}});
  EXPECT_EQ(r.status, 400);
  r = Call("PATCH", "/Users/" + id,
           {{"Operations",
             {{{"op", "replace"}, {"path", "active"}, {"value", "maybe"}}}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Call("GET", "/Users/" + id).body["meta"]["version"], "W/\"3\"");
  EXPECT_THAT(changes_, ElementsAre("directory.user.create bob@example.com",
                                    "directory.user.deactivate bob@example.com",
                                    "directory.user.reactivate bob@example.com"));
}

TEST_F(ScimTest, GroupMembershipFollowsBothProvidersPatches) {
  const std::string alice = CreateUser("alice");
  const std::string bob = CreateUser("bob");
  const std::string gid = CreateGroup("dba");
  // Okta: add with a path and a list (a member twice counts once).
  EXPECT_EQ(Call("PATCH", "/Groups/" + gid,
                 {{"schemas", {kPatch}},
                  {"Operations",
                   {{{"op", "add"},
                     {"path", "members"},
                     {"value", {{{"value", alice}, {"display", "alice"}},
                                {{"value", alice}}}}}}}})
                .status,
            204);
  // Entra ID: Add, then Remove with a value list.
  EXPECT_EQ(Call("PATCH", "/Groups/" + gid,
                 {{"Operations",
                   {{{"op", "Add"},
                     {"path", "members"},
                     {"value", {{{"value", bob}}}}}}}})
                .status,
            204);
  EXPECT_THAT(Members(gid), ElementsAre(alice, bob));
  EXPECT_EQ(Call("PATCH", "/Groups/" + gid,
                 {{"Operations",
                   {{{"op", "Remove"},
                     {"path", "members"},
                     {"value", {{{"value", bob}}}}}}}})
                .status,
            204);
  EXPECT_THAT(Members(gid), ElementsAre(alice));
  // Okta: remove by a value filter; rename without a path.
  EXPECT_EQ(Call("PATCH", "/Groups/" + gid,
                 {{"Operations",
                   {{{"op", "remove"},
                     {"path", "members[value eq \"" + alice + "\"]"}},
                    {{"op", "replace"},
                     {"value", {{"id", gid}, {"displayName", "dbas"}}}}}}})
                .status,
            204);
  Reply g = Call("GET", "/Groups/" + gid);
  EXPECT_EQ(g.body["displayName"], "dbas");
  EXPECT_TRUE(g.body["members"].empty());
  // Unknown members are refused; so is a second group of the same name.
  EXPECT_EQ(Call("PATCH", "/Groups/" + gid,
                 {{"Operations",
                   {{{"op", "add"},
                     {"path", "members"},
                     {"value", {{{"value", "ghost"}}}}}}}})
                .status,
            400);
  EXPECT_EQ(Call("POST", "/Groups", {{"displayName", "DBAS"}}).status, 409);
  // excludedAttributes=members, as Entra ID asks.
  Reply list = Call("GET", "/Groups", Json(), "good",
                    {{"filter", "displayName eq \"dbas\""},
                     {"excludedAttributes", "members"}});
  ASSERT_EQ(list.body["totalResults"], 1);
  EXPECT_FALSE(list.body["Resources"][0].contains("members"));
  // PUT replaces the members.
  Reply put = Call("PUT", "/Groups/" + gid,
                   {{"displayName", "dbas"}, {"members", {{{"value", bob}}}}});
  EXPECT_EQ(put.status, 200);
  EXPECT_THAT(Members(gid), ElementsAre(bob));
  EXPECT_EQ(Call("DELETE", "/Groups/" + gid).status, 204);
  EXPECT_EQ(Call("GET", "/Groups/" + gid).status, 404);
}

TEST_F(ScimTest, BundleEntriesCarryStateGroupsAndTombstones) {
  const std::string alice = CreateUser(
      "Alice@example.com",
      {{"emails", {{{"value", "a.smith@example.com"}}}}});
  const std::string bob = CreateUser("bob");
  const std::string gid = CreateGroup("contractors");
  ASSERT_EQ(Call("PUT", "/Groups/" + gid,
                 {{"displayName", "contractors"},
                  {"members", {{{"value", alice}}, {{"value", bob}}}}})
                .status,
            200);
  ASSERT_EQ(Call("DELETE", "/Users/" + bob).status, 204);
  EXPECT_EQ(Call("GET", "/Users/" + bob).status, 404);
  auto entries = directory_->Entries();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2);
  EXPECT_EQ((*entries)[0].user_name(), "alice@example.com");
  EXPECT_TRUE((*entries)[0].active());
  EXPECT_THAT((*entries)[0].aliases(), ElementsAre("a.smith@example.com"));
  // As the provider wrote it, where that is not its lower case.
  EXPECT_THAT((*entries)[0].written_names(), ElementsAre("Alice@example.com"));
  EXPECT_THAT((*entries)[0].groups(), ElementsAre("contractors"));
  // The deleted user stays, refused, and left its groups.
  EXPECT_EQ((*entries)[1].user_name(), "bob");
  EXPECT_FALSE((*entries)[1].active());
  EXPECT_TRUE((*entries)[1].groups().empty());
  EXPECT_THAT(Members(gid), ElementsAre(alice));
  // The name is free again; the new live user wins over the tombstone.
  CreateUser("bob");
  entries = directory_->Entries();
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE((*entries)[1].active());
}

// Issue 14: an admin's deactivation was silently lifted by the identity
// provider's next PATCH active: true.
TEST_F(ScimTest, AnAdminsDeactivationHoldsAgainstScim) {
  const std::string dave = CreateUser("dave");
  auto held = directory_->SetActive("dave", false, "token:secops", absl::Now());
  ASSERT_TRUE(held.ok()) << held.status();
  const Json reactivate = {
      {"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
      {"Operations", {{{"op", "replace"}, {"value", {{"active", true}}}}}}};
  ASSERT_EQ(Call("PATCH", "/Users/" + dave, reactivate).status, 200);
  ASSERT_EQ(Call("PUT", "/Users/" + dave,
                 {{"userName", "dave"}, {"active", true}})
                .status,
            200);
  auto entries = directory_->Entries();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1);
  EXPECT_FALSE((*entries)[0].active()) << "SCIM lifted an admin's hold";
  // An admin lifts it.
  ASSERT_TRUE(
      directory_->SetActive("dave", true, "token:secops", absl::Now()).ok());
  entries = directory_->Entries();
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE((*entries)[0].active());
  // And SCIM's own deactivation is SCIM's to lift.
  const Json deactivate = {
      {"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
      {"Operations", {{{"op", "replace"}, {"value", {{"active", false}}}}}}};
  ASSERT_EQ(Call("PATCH", "/Users/" + dave, deactivate).status, 200);
  EXPECT_FALSE((*directory_->Entries())[0].active());
  ASSERT_EQ(Call("PATCH", "/Users/" + dave, reactivate).status, 200);
  EXPECT_TRUE((*directory_->Entries())[0].active());
}

// Red team pass 7: a hold typed as an e-mail was applied to its owner and
// then lost when the provider deleted the owner and created a user under
// that e-mail; a hold placed before provisioning stayed on the name while
// a user the provider gave that name as an e-mail connected.
TEST_F(ScimTest, AHoldFollowsEveryNameOfTheHeldPerson) {
  auto entry_of = [&](const std::string& name) {
    const auto entries = directory_->Entries();
    EXPECT_TRUE(entries.ok());
    for (const auto& e : *entries) {
      if (e.user_name() == name) return e;
    }
    ADD_FAILURE() << "no entry " << name;
    return warden::v1::DirectoryEntry();
  };
  const std::string pat = CreateUser(
      "pat@example.com", {{"emails", {{{"value", "pat.mail@example.com"}}}}});
  ASSERT_TRUE(directory_
                  ->SetActive("pat.mail@example.com", false, "token:secops",
                              absl::Now())
                  .ok());
  ASSERT_EQ(Call("DELETE", "/Users/" + pat).status, 204);
  CreateUser("PAT.MAIL@example.com");
  const auto reborn = entry_of("pat.mail@example.com");
  EXPECT_FALSE(reborn.active());
  EXPECT_TRUE(reborn.admin_hold());
  // Activating the name the admin typed lifts it.
  auto lifted = directory_->SetActive("pat.mail@example.com", true,
                                      "token:secops", absl::Now());
  ASSERT_TRUE(lifted.ok()) << lifted.status();
  EXPECT_TRUE(entry_of("pat.mail@example.com").active());

  // Red team pass 8: activating the new user who took a held person's
  // e-mail released the held person too.
  const std::string vic = CreateUser(
      "vic@example.com", {{"emails", {{{"value", "vic.mail@example.com"}}}}});
  ASSERT_TRUE(
      directory_->SetActive("vic@example.com", false, "token:secops",
                            absl::Now())
          .ok());
  ASSERT_EQ(Call("DELETE", "/Users/" + vic).status, 204);
  CreateUser("VIC@example.com");
  CreateUser("vic.mail@example.com");
  EXPECT_FALSE(entry_of("vic@example.com").active());
  EXPECT_FALSE(entry_of("vic.mail@example.com").active());
  ASSERT_TRUE(directory_
                  ->SetActive("vic.mail@example.com", true, "token:secops",
                              absl::Now())
                  .ok());
  EXPECT_TRUE(entry_of("vic.mail@example.com").active());
  EXPECT_FALSE(entry_of("vic@example.com").active()) << "vic was released";

  // A hold on a name nobody had yet, then a user with it as an e-mail.
  ASSERT_TRUE(
      directory_->SetActive("zed@example.com", false, "token:secops",
                            absl::Now())
          .ok());
  CreateUser("zoe@example.com",
             {{"emails", {{{"value", "zed@example.com"}}}}});
  EXPECT_FALSE(entry_of("zoe@example.com").active());
  auto still = directory_->SetActive("zoe@example.com", true, "token:secops",
                                     absl::Now());
  ASSERT_TRUE(still.ok());
  EXPECT_TRUE(still->refused);
  EXPECT_THAT(still->note, HasSubstr("its e-mail zed@example.com is held"));
  ASSERT_TRUE(
      directory_->SetActive("zed@example.com", true, "token:secops",
                            absl::Now())
          .ok());
  EXPECT_TRUE(entry_of("zoe@example.com").active());

  // Red team pass 9: the hold is on a deleted record's name (a held user
  // renamed away) that a new user has as an e-mail; activating the new
  // user said "activated" and nothing more.
  const std::string bx = CreateUser("bx@example.com");
  ASSERT_TRUE(
      directory_->SetActive("bx@example.com", false, "token:secops",
                            absl::Now())
          .ok());
  ASSERT_EQ(Call("PATCH", "/Users/" + bx,
                 {{"Operations", {{{"op", "replace"},
                                   {"path", "userName"},
                                   {"value", "bx2@example.com"}}}}})
                .status,
            200);
  CreateUser("bz@example.com", {{"emails", {{{"value", "bx@example.com"}}}}});
  EXPECT_FALSE(entry_of("bz@example.com").active());
  auto held = directory_->SetActive("bz@example.com", true, "token:secops",
                                    absl::Now());
  ASSERT_TRUE(held.ok());
  EXPECT_TRUE(held->refused);
  EXPECT_THAT(held->note,
              HasSubstr("its e-mail bx@example.com is held too (by "
                        "token:secops): activate that name as well"));
  EXPECT_FALSE(entry_of("bz@example.com").active());

  // Pass 10: following that advice must work. The held person deleted,
  // a new user with their e-mail: activating the e-mail lifts it.
  const std::string p = CreateUser(
      "p@example.com", {{"emails", {{{"value", "z@example.com"}}}}});
  ASSERT_TRUE(
      directory_->SetActive("p@example.com", false, "token:secops", absl::Now())
          .ok());
  ASSERT_EQ(Call("DELETE", "/Users/" + p).status, 204);
  CreateUser("q@example.com", {{"emails", {{{"value", "z@example.com"}}}}});
  EXPECT_FALSE(entry_of("q@example.com").active());
  auto advice = directory_->SetActive("q@example.com", true, "token:secops",
                                      absl::Now());
  ASSERT_TRUE(advice.ok());
  EXPECT_THAT(advice->note, HasSubstr("its e-mail z@example.com is held too"));
  ASSERT_TRUE(
      directory_->SetActive("z@example.com", true, "token:secops", absl::Now())
          .ok());
  EXPECT_TRUE(entry_of("q@example.com").active());
  EXPECT_FALSE(entry_of("p@example.com").active()) << "p stays held";
}

TEST_F(ScimTest, TheDirectoryIsRebuiltFromTheLog) {
  const std::string id = CreateUser("carol");
  ASSERT_EQ(Call("PATCH", "/Users/" + id,
                 {{"Operations", {{{"op", "replace"},
                                   {"path", "userName"},
                                   {"value", "carol.c"}}}}})
                .status,
            200);
  auto before = directory_->Entries();
  ASSERT_TRUE(before.ok());
  Close();
  std::filesystem::remove_all(dir_ + "/state");  // keep only the log
  Open();
  auto after = directory_->Entries();
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1);
  EXPECT_EQ((*after)[0].SerializeAsString(), (*before)[0].SerializeAsString());
  EXPECT_TRUE(directory_->FindUser("CAROL.C").ok());
  EXPECT_TRUE(absl::IsNotFound(directory_->FindUser("carol").status()));
}

// Red team pass 9 (R1, R2): a name moved between active users kept no
// record, so the earlier holder's credentials passed as the new one. Each
// entry now says, per name, when it took a name that had a holder.
TEST_F(ScimTest, EntriesSayWhenANameChangedHands) {
  const auto reused = [this](const std::string& user) {
    std::map<std::string, int64_t> out;
    auto entries = directory_->Entries();
    EXPECT_TRUE(entries.ok());
    for (const auto& e : *entries) {
      if (e.user_name() != user) continue;
      for (const auto& [name, when] : e.names_reused_unix_ms()) {
        out[name] = when;
      }
      EXPECT_EQ(e.name_reused_unix_ms(), 0) << user;  // the legacy field
    }
    return out;
  };
  const auto ms = [](absl::Time t) { return absl::ToUnixMillis(t); };
  const Json remove_emails = {
      {"Operations", {{{"op", "remove"}, {"path", "emails"}}}}};
  const auto rename = [&](const std::string& id, const std::string& to) {
    return Call("PATCH", "/Users/" + id,
                {{"Operations", {{{"op", "replace"},
                                  {"path", "userName"},
                                  {"value", to}}}}})
        .status;
  };
  // First provisioning takes nothing from anyone: no forced re-login.
  const std::string ann =
      CreateUser("ann", {{"emails", {{{"value", "desk@example.com"}}}}});
  EXPECT_TRUE(reused("ann").empty());
  // The e-mail moves from Ann to Ben.
  now_ = kNow + absl::Minutes(1);
  ASSERT_EQ(Call("PATCH", "/Users/" + ann, remove_emails).status, 200);
  now_ = kNow + absl::Minutes(2);
  const std::string ben =
      CreateUser("ben", {{"emails", {{{"value", "Desk@example.com"}}}}});
  EXPECT_EQ(reused("ben"),
            (std::map<std::string, int64_t>{{"desk@example.com", ms(now_)}}));
  // A rewrite of Ben that keeps the e-mail keeps the time.
  now_ = kNow + absl::Minutes(3);
  ASSERT_EQ(Call("PUT", "/Users/" + ben,
                 {{"userName", "ben"},
                  {"emails", {{{"value", "desk@example.com"}}}},
                  {"names_taken_unix_ms", {{"desk@example.com", 0}}}})
                .status,
            200);
  EXPECT_EQ(reused("ben")["desk@example.com"], ms(kNow + absl::Minutes(2)));

  // Renamed away, the name taken by another, renamed back (R2): the
  // directory read again from its records after a restart still knows.
  ASSERT_EQ(rename(ann, "ann.away"), 200);
  const std::string cy = CreateUser("ann");
  now_ = kNow + absl::Minutes(4);
  ASSERT_EQ(rename(cy, "cy"), 200);
  Close();
  Open();
  now_ = kNow + absl::Minutes(5);
  ASSERT_EQ(rename(ann, "ann"), 200);
  EXPECT_EQ(reused("ann"),
            (std::map<std::string, int64_t>{{"ann", ms(now_)}}));

  // A name only its own record ever held comes back to it unchanged: no
  // forced sign-in (red team pass 10).
  const std::string solo = CreateUser("solo");
  ASSERT_EQ(rename(solo, "solo.away"), 200);
  ASSERT_EQ(rename(solo, "solo"), 200);
  EXPECT_TRUE(reused("solo").empty());

  // Two users share an e-mail (refused as ambiguous); when one gives it
  // up, the other takes it anew.
  const std::string dee =
      CreateUser("dee", {{"emails", {{{"value", "ops@example.com"}}}}});
  CreateUser("eve", {{"emails", {{{"value", "ops@example.com"}}}}});
  now_ = kNow + absl::Minutes(6);
  ASSERT_EQ(Call("PATCH", "/Users/" + dee, remove_emails).status, 200);
  EXPECT_EQ(reused("eve"),
            (std::map<std::string, int64_t>{{"ops@example.com", ms(now_)}}));
  EXPECT_TRUE(reused("dee").empty());
}

// Red team pass 10: a look-alike got in by changing only the case of a
// name the check had let through ("WIII" to "wiII" next to "will"), or by
// taking a deleted record's name in another case.
TEST_F(ScimTest, ACaseChangeIsANewSpellingAndIsChecked) {
  CreateUser("will@d.example");
  const std::string w = CreateUser("WIII@d.example");  // reads as WILL? no
  const Reply renamed = Call("PATCH", "/Users/" + w,
                             {{"Operations", {{{"op", "replace"},
                                               {"path", "userName"},
                                               {"value", "wiII@d.example"}}}}});
  EXPECT_EQ(renamed.status, 409) << renamed.body.dump();
  EXPECT_THAT(renamed.body.dump(), HasSubstr("looks like will@d.example"));
  // Re-sending it as it is stays allowed.
  EXPECT_EQ(Call("PUT", "/Users/" + w, {{"userName", "WIII@d.example"}}).status,
            200);

  CreateUser("bill@d.example");
  const std::string b = CreateUser("BIII@d.example");
  ASSERT_EQ(Call("DELETE", "/Users/" + b).status, 204);
  const Reply reborn = Call("POST", "/Users", {{"userName", "biII@d.example"}});
  EXPECT_EQ(reborn.status, 409) << reborn.body.dump();

  // Groups too.
  CreateGroup("all-staff");
  Reply g = Call("POST", "/Groups", {{"displayName", "AII-STAFF"}});
  ASSERT_EQ(g.status, 201) << g.body.dump();
  const Reply regrouped =
      Call("PUT", "/Groups/" + g.body.value("id", ""),
           {{"displayName", "aII-staff"}});
  EXPECT_EQ(regrouped.status, 409) << regrouped.body.dump();
}

TEST_F(ScimTest, BundlesRepublishWhenTheDirectoryChanges) {
  auto key = crypto::GenerateEd25519Key();
  ASSERT_TRUE(key.ok());
  bundles::Bundles bundles(state_.get(), store_.get(),
                           bundles::SigningKey{key->private_pem});
  bundles.SetDirectory([this] { return directory_->Entries(); });
  const std::string policy =
      "apiVersion: warden/v1\nkind: Policy\nmetadata: { name: p }\nspec:\n"
      "  environments: [prod]\n  rules:\n    - name: r\n"
      "      match: { commands: [\"DROP TABLE\"] }\n      action: deny\n";
  ASSERT_TRUE(bundles.Push({{"p.yaml", policy}}, "", "t", kNow, false).ok());
  EXPECT_TRUE(bundles.RefreshIdentities("t", kNow)->unchanged);
  const std::string id = CreateUser("dave");
  auto refreshed = bundles.RefreshIdentities("t", kNow);
  ASSERT_TRUE(refreshed.ok());
  EXPECT_FALSE(refreshed->unchanged);
  auto head = bundles.Get(0);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->signed_bundle().revision(), refreshed->revision);
  warden::v1::PolicyBundle bundle;
  ASSERT_TRUE(bundle.ParseFromString(head->signed_bundle().bundle()));
  ASSERT_EQ(bundle.directory_size(), 1);
  EXPECT_EQ(bundle.directory(0).user_name(), "dave");
  EXPECT_THAT(head->signed_bundle().message(), HasSubstr("directory changed"));
  EXPECT_TRUE(bundles.RefreshIdentities("t", kNow)->unchanged);
}

// `{"a":{"a":...leaf...}}`, `depth` objects deep.
std::string Nested(size_t depth, const std::string& leaf = "1") {
  std::string out;
  for (size_t i = 0; i < depth; ++i) out += R"({"a":)";
  out += leaf;
  out.append(depth, '}');
  return out;
}

// Issue 14 item 5: a body nested 200,000 deep crashed warden-control in
// nlohmann-json's recursive dump().
TEST_F(ScimTest, RefusesBodiesNestedDeeperThanTheLimit) {
  const auto expect_refused = [](const Reply& r) {
    EXPECT_EQ(r.status, 400) << r.body.dump();
    EXPECT_EQ(r.body["scimType"], "invalidSyntax");
    EXPECT_EQ(r.body["status"], "400");
    EXPECT_THAT(r.body["detail"].get<std::string>(),
                HasSubstr("nested deeper than 32 levels"));
  };
  ASSERT_EQ(scim::kMaxJsonDepth, 32);
  expect_refused(
      CallRaw("POST", "/Users",
              R"({"userName": "deep", "a": )" + Nested(200000) + "}"));
  expect_refused(CallRaw("POST", "/Groups",
                         std::string(200000, '[') + std::string(200000, ']')));
  // At the limit: the user object is level 1, "a" holds the other 31.
  Reply at = CallRaw("POST", "/Users",
                     R"({"userName": "at", "a": )" + Nested(31) + "}");
  ASSERT_EQ(at.status, 201) << at.body.dump();
  const std::string id = at.body["id"];
  Reply read = Call("GET", "/Users/" + id);
  ASSERT_EQ(read.status, 200);
  EXPECT_EQ(scim::JsonDepth(read.body.dump()), 32);
  expect_refused(CallRaw("POST", "/Users",
                         R"({"userName": "over", "a": )" + Nested(32) + "}"));
  // Brackets inside strings are text.
  EXPECT_EQ(CallRaw("POST", "/Users",
                    R"({"userName": "brackets", "title": ")" +
                        std::string(100, '[') + R"(\"{{{"})")
                .status,
            201);
  // PATCH: a deep value is refused the same way, and changes nothing.
  const std::string patch_head =
      absl::StrCat(R"({"schemas": [")", kPatch,
                   R"("], "Operations": [{"op": "add", "path": )");
  expect_refused(
      CallRaw("PATCH", "/Users/" + id,
              patch_head + R"("title", "value": )" + Nested(200000) + "}]}"));
  // A value within the body's limit that a path would put deeper than 32
  // levels in the stored resource.
  const Reply too_deep =
      CallRaw("PATCH", "/Users/" + id,
              patch_head + "\"" + kEnterprise +
                  R"(:emails[type eq \"work\"].value", "value": )" +
                  Nested(29) + "}]}");
  EXPECT_EQ(too_deep.status, 400) << too_deep.body.dump();
  EXPECT_EQ(too_deep.body["scimType"], "invalidValue");
  EXPECT_THAT(too_deep.body["detail"].get<std::string>(),
              HasSubstr("deeper than 32 levels"));
  Reply after = Call("GET", "/Users/" + id);
  EXPECT_EQ(after.body["meta"]["version"], "W/\"1\"");
  EXPECT_FALSE(after.body.contains("title"));
  EXPECT_THAT(changes_, ElementsAre("directory.user.create at",
                                    "directory.user.create brackets"));
}

TEST_F(ScimTest, RefusesBodiesOverTheSizeLimit) {
  std::string big = R"({"userName": "big", "title": ")";
  big.append(scim::kMaxBodyBytes, 'x');
  big += R"("})";
  Reply r = CallRaw("POST", "/Users", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_THAT(r.body["detail"].get<std::string>(), HasSubstr("8 MiB"));
  EXPECT_TRUE(changes_.empty());
}

TEST(ScimJsonTest, JsonDepthCountsBracketsOutsideStrings) {
  EXPECT_EQ(scim::JsonDepth("7"), 0);
  EXPECT_EQ(scim::JsonDepth("{}"), 1);
  EXPECT_EQ(scim::JsonDepth(R"({"a": [1, "]]"]})"), 2);
  EXPECT_EQ(scim::JsonDepth(R"([{"a": "\"[{"}, [[]]])"), 3);
  // An escaped backslash does not escape the quote after it.
  EXPECT_EQ(scim::JsonDepth(R"(["\\", [[]]])"), 3);
  // Malformed text: unmatched closers never lower the count below zero.
  EXPECT_EQ(scim::JsonDepth("]]]][["), 2);
  EXPECT_EQ(scim::JsonDepth(std::string(200000, '[')), 200000);
}

TEST(ScimJsonTest, ParseJsonRefusesDeepAndMalformedText) {
  EXPECT_TRUE(scim::ParseJson(Nested(32)).ok());
  auto deep = scim::ParseJson(Nested(33));
  EXPECT_TRUE(absl::IsInvalidArgument(deep.status()));
  EXPECT_THAT(deep.status().message(), HasSubstr("deeper than 32 levels"));
  auto garbage = scim::ParseJson("{not json");
  EXPECT_TRUE(absl::IsInvalidArgument(garbage.status()));
  EXPECT_EQ(garbage.status().message(), "not JSON");
  // Deep and malformed: refused by the scan, never parsed.
  EXPECT_TRUE(absl::IsInvalidArgument(
      scim::ParseJson(std::string(200000, '{')).status()));
}

TEST(CoalescerTest, RequestsDuringARunBecomeOneMoreRun) {
  absl::Notification first_started, release;
  int runs = 0;
  server::Coalescer coalescer(absl::Milliseconds(1), [&] {
    if (++runs == 1) {
      first_started.Notify();
      release.WaitForNotification();
    }
  });
  coalescer.Request();
  first_started.WaitForNotification();
  for (int i = 0; i < 50; ++i) coalescer.Request();
  release.Notify();
  coalescer.Stop();  // runs what is pending, then ends
  EXPECT_EQ(runs, 2);
}

TEST(CoalescerTest, AnUrgentRequestDoesNotWaitForTheBurst) {
  absl::Notification ran;
  // A delay no test would wait for: only urgency can run the action.
  server::Coalescer coalescer(absl::Hours(1), [&] { ran.Notify(); });
  coalescer.Request(/*urgent=*/true);
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

}  // namespace
}  // namespace warden::controlplane
