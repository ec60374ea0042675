// The control plane's audit log: events appended through AuditIngest (in
// process and over mTLS gRPC), de-duplicated by (source, sequence), in one
// Merkle tree whose leaves also chain; proofs and checkpoints verify with
// the verifiers an auditor would use; the log replays to the same tree.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "controlplane/audit/checkpoint.h"
#include "controlplane/audit/export.h"
#include "controlplane/audit/ledger.h"
#include "controlplane/audit/leaf.h"
#include "controlplane/audit/merkle.h"
#include "controlplane/audit/verify.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/warden/v1/audit.grpc.pb.h"
#include "tests/unit/controlplane/controlplane_fixture.h"

namespace warden::controlplane {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using warden::v1::AppendAuditRequest;
using warden::v1::AppendAuditResponse;

AppendAuditRequest Events(const std::string& proxy, const std::string& env,
                          uint64_t from, uint64_t to) {
  AppendAuditRequest request;
  for (uint64_t s = from; s <= to; ++s) {
    auto* e = request.add_events();
    e->set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
    e->set_proxy_id(proxy);
    e->set_environment(env);
    e->set_session_id("sess-1");
    e->set_sequence(s);
    e->mutable_identity()->set_user("alice");
    e->mutable_statement()->set_normalized_text(
        absl::StrCat("SELECT $1 /* ", s, " */"));
  }
  return request;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cp_ = std::make_unique<TestControlPlane>(
        std::string("audit_") +
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_TRUE(cp_->ok());
  }
  absl::StatusOr<AppendAuditResponse> Append(const std::string& proxy,
                                             const std::string& env,
                                             uint64_t from, uint64_t to) {
    AppendAuditResponse response;
    absl::Status s = cp_->audit_ingest()->AppendFrom(
        {proxy, env}, Events(proxy, env, from, to), absl::Now(), &response);
    if (!s.ok()) return s;
    return response;
  }
  std::vector<warden::v1::AuditEntry> All() {
    auto tree = cp_->ledger()->Tree();
    EXPECT_TRUE(tree.ok());
    auto entries = cp_->ledger()->Entries(0, tree->size(), 1000000);
    EXPECT_TRUE(entries.ok());
    return *entries;
  }
  // Every entry's leaf, decoded.
  std::vector<warden::v1::AuditLeaf> Leaves() {
    std::vector<warden::v1::AuditLeaf> leaves;
    for (const auto& entry : All()) {
      auto parts = audit::SplitLeaf(entry.leaf());
      EXPECT_TRUE(parts.ok());
      leaves.emplace_back();
      EXPECT_TRUE(parts.ok() && leaves.back().ParseFromString(parts->second));
    }
    return leaves;
  }
  std::unique_ptr<TestControlPlane> cp_;
};

TEST_F(AuditLogTest, AppendsChainsAndProves) {
  auto r = Append("p1", "prod", 1, 5);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->acknowledged_sequence(), 5u);
  EXPECT_EQ(r->tree_size(), 5u);
  const auto entries = All();
  ASSERT_EQ(entries.size(), 5u);
  std::vector<std::string> hashes;
  std::string previous(audit::kHashSize, '\0');
  for (const auto& e : entries) {
    auto parts = audit::SplitLeaf(e.leaf());
    ASSERT_TRUE(parts.ok());
    EXPECT_EQ(parts->first, previous) << "chain link of entry " << e.index();
    warden::v1::AuditLeaf leaf;
    ASSERT_TRUE(leaf.ParseFromString(parts->second));
    EXPECT_EQ(leaf.source(), "prod/p1");
    EXPECT_EQ(leaf.event().sequence(), e.index() + 1);
    EXPECT_GT(leaf.received_at().seconds(), 0);
    previous = audit::LeafHash(e.leaf());
    hashes.push_back(previous);
  }
  auto tree = cp_->ledger()->Tree();
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(*audit::RootFromLeafHashes(hashes), tree->Root());
  for (uint64_t i = 0; i < 5; ++i) {
    auto proof = cp_->ledger()->InclusionProof(i, 5);
    ASSERT_TRUE(proof.ok());
    EXPECT_TRUE(
        audit::VerifyInclusion(hashes[i], i, 5, *proof, tree->Root()).ok());
  }
  // Consistency with an earlier size.
  auto early = audit::RootFromLeafHashes({hashes.begin(), hashes.begin() + 3});
  auto consistency = cp_->ledger()->ConsistencyProof(3, 5);
  ASSERT_TRUE(consistency.ok());
  EXPECT_TRUE(audit::VerifyConsistency(3, 5, *early, tree->Root(), *consistency)
                  .ok());
  EXPECT_EQ(cp_->ledger()->InclusionProof(0, 6).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(AuditLogTest, ResentEventsAreNotDuplicatedAndGapsAreRefused) {
  ASSERT_TRUE(Append("p1", "prod", 1, 5).ok());
  // At-least-once: 3..7 arrives after a lost acknowledgement.
  auto r = Append("p1", "prod", 3, 7);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->acknowledged_sequence(), 7u);
  EXPECT_EQ(r->tree_size(), 7u);
  // Everything again: nothing new.
  r = Append("p1", "prod", 1, 7);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tree_size(), 7u);
  // A gap: the proxy is told where to resend from.
  auto gap = Append("p1", "prod", 10, 12);
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(gap.status().message(), HasSubstr("resend from 8"));
  // Another proxy has its own sequences.
  r = Append("p2", "prod", 1, 2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->acknowledged_sequence(), 2u);
  EXPECT_EQ(r->tree_size(), 9u);
  EXPECT_EQ(*cp_->ledger()->Acknowledged("prod/p1"), 7u);
  // Every (source, sequence) exactly once.
  std::set<std::pair<std::string, uint64_t>> seen;
  for (const auto& e : All()) {
    warden::v1::AuditLeaf leaf;
    ASSERT_TRUE(leaf.ParseFromString(audit::SplitLeaf(e.leaf())->second));
    EXPECT_TRUE(seen.insert({leaf.source(), leaf.event().sequence()}).second);
  }
  EXPECT_EQ(seen.size(), 9u);
}

TEST_F(AuditLogTest, EventsMustBeTheCertificatesAndConsecutive) {
  auto wrong = cp_->audit_ingest()->AppendFrom(
      {"p1", "prod"}, Events("p2", "prod", 1, 1), absl::Now(),
      new AppendAuditResponse);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kPermissionDenied);
  auto request = Events("p1", "prod", 1, 3);
  request.mutable_events(2)->set_sequence(5);
  AppendAuditResponse response;
  EXPECT_EQ(cp_->audit_ingest()
                ->AppendFrom({"p1", "prod"}, request, absl::Now(), &response)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cp_->ledger()->Tree()->size(), 0u);
}

// Each event carries the environment of the listener that served it
// (issue 14.8); the certificate must cover it, or the event is recorded
// under the certificate's own and what it claimed is kept aside.
TEST_F(AuditLogTest, EventsCarryTheirEnvironmentWithinTheCertificates) {
  ca::ProxyIdentity identity{"p1", "prod"};
  identity.also_serves = {"dev"};
  AppendAuditRequest request = Events("p1", "dev", 1, 3);
  request.mutable_events(1)->set_environment("staging");
  request.mutable_events(2)->clear_environment();  // an older proxy's
  AppendAuditResponse response;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom(identity, request, absl::Now(), &response)
                  .ok());
  const auto leaves = Leaves();
  ASSERT_EQ(leaves.size(), 3u);
  for (const auto& leaf : leaves) {
    EXPECT_EQ(leaf.source(), "prod/p1");  // one sequence stream
  }
  EXPECT_EQ(leaves[0].event().environment(), "dev");
  EXPECT_FALSE(leaves[0].event().has_repairs());
  EXPECT_EQ(leaves[1].event().environment(), "prod");
  EXPECT_EQ(leaves[1].event().repairs().unauthorized_environment(), "staging");
  EXPECT_EQ(leaves[2].event().environment(), "prod");
  // A certificate for prod alone cannot record dev events.
  AppendAuditResponse other;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom({"p2", "prod"}, Events("p2", "dev", 1, 1),
                               absl::Now(), &other)
                  .ok());
  warden::v1::AuditLeaf leaf;
  ASSERT_TRUE(leaf.ParseFromString(audit::SplitLeaf(All()[3].leaf())->second));
  EXPECT_EQ(leaf.event().environment(), "prod");
  EXPECT_EQ(leaf.event().repairs().unauthorized_environment(), "dev");
}

// Red team: a proxy's certificate appended ADMIN events naming an admin
// token ("token:bootstrap-admin: policy.push"), which read like the control
// plane's. Kinds only warden-control records are kept from proxies as a
// repair, never as the kind; the proxy's trail goes on.
TEST_F(AuditLogTest, ProxiesCannotRecordTheControlPlanesKinds) {
  AppendAuditRequest request = Events("p1", "prod", 1, 3);
  request.mutable_events(0)->set_kind(warden::v1::AUDIT_EVENT_KIND_ADMIN);
  request.mutable_events(0)->mutable_identity()->set_user(
      "token:bootstrap-admin");
  request.mutable_events(1)->set_kind(
      warden::v1::AUDIT_EVENT_KIND_POLICY_PUSH);
  request.mutable_events(2)->set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  AppendAuditResponse response;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom({"p1", "prod"}, request, absl::Now(), &response)
                  .ok());
  const auto leaves = Leaves();
  ASSERT_EQ(leaves.size(), 3u);
  EXPECT_EQ(leaves[0].event().kind(), warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED);
  EXPECT_EQ(leaves[0].event().repairs().unauthorized_kind(),
            warden::v1::AUDIT_EVENT_KIND_ADMIN);
  EXPECT_EQ(leaves[0].source(), "prod/p1");
  EXPECT_EQ(leaves[1].event().kind(), warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED);
  EXPECT_EQ(leaves[1].event().repairs().unauthorized_kind(),
            warden::v1::AUDIT_EVENT_KIND_POLICY_PUSH);
  EXPECT_EQ(leaves[2].event().kind(), warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  EXPECT_FALSE(leaves[2].event().has_repairs());
}

// The same (source, sequence) with other content is never a silent
// duplicate (issue 14): the Append is refused, nothing of it is recorded,
// an alarm is recorded (once a minute per source) and counted; a true
// resend is still skipped.
TEST_F(AuditLogTest, AnotherEventUnderARecordedSequenceIsAnAlarm) {
  ASSERT_TRUE(Append("p1", "prod", 1, 3).ok());
  AppendAuditRequest forged = Events("p1", "prod", 2, 5);
  forged.mutable_events(0)->mutable_statement()->set_normalized_text(
      "DELETE FROM orders");
  AppendAuditResponse response;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const absl::Status refused = cp_->audit_ingest()->AppendFrom(
        {"p1", "prod"}, forged, absl::Now(), &response);
    EXPECT_EQ(refused.code(), absl::StatusCode::kAlreadyExists);
    EXPECT_THAT(std::string(refused.message()),
                HasSubstr("sequence 2 of prod/p1 is already recorded"));
  }
  EXPECT_EQ(cp_->audit_ingest()->sequence_conflicts(), 3u);
  EXPECT_EQ(*cp_->ledger()->Acknowledged("prod/p1"), 3u);
  int alarms = 0, p1_events = 0;
  for (const auto& e : All()) {
    warden::v1::AuditLeaf leaf;
    ASSERT_TRUE(leaf.ParseFromString(audit::SplitLeaf(e.leaf())->second));
    if (leaf.source() == "prod/p1") {
      ++p1_events;
      EXPECT_THAT(leaf.event().statement().normalized_text(),
                  Not(HasSubstr("DELETE")));
    }
    if (leaf.event().admin().action() == "audit.sequence_conflict") {
      ++alarms;
      EXPECT_EQ(leaf.event().admin().target(), "prod/p1");
      EXPECT_FALSE(leaf.event().admin().success());
    }
  }
  EXPECT_EQ(p1_events, 3);
  EXPECT_EQ(alarms, 1);  // the retries within the minute are counted only
  // The same events again (a resend after a lost acknowledgement), then
  // new ones: recorded as before.
  auto resent = Append("p1", "prod", 1, 5);
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_EQ(resent->acknowledged_sequence(), 5u);
}

TEST_F(AuditLogTest, EncodedEventsAreTheSameLeavesAsDecodedOnes) {
  // What a proxy sends: its spooled bytes with id, environment and
  // sequence appended, not re-encoded.
  const AppendAuditRequest decoded = Events("p1", "prod", 1, 3);
  AppendAuditRequest encoded;
  for (const auto& e : decoded.events()) {
    warden::v1::AuditEvent spooled = e, tail;
    spooled.clear_proxy_id();
    spooled.clear_environment();
    spooled.clear_sequence();
    tail.set_proxy_id(e.proxy_id());
    tail.set_environment(e.environment());
    tail.set_sequence(e.sequence());
    encoded.add_encoded_events(spooled.SerializeAsString() +
                               tail.SerializeAsString());
  }
  AppendAuditResponse response;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom({"p1", "prod"}, encoded, absl::Now(), &response)
                  .ok());
  EXPECT_EQ(response.acknowledged_sequence(), 3u);
  const auto entries = All();
  ASSERT_EQ(entries.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    auto parts = audit::SplitLeaf(entries[i].leaf());
    ASSERT_TRUE(parts.ok());
    warden::v1::AuditLeaf leaf;
    ASSERT_TRUE(leaf.ParseFromString(parts->second));
    EXPECT_EQ(leaf.event().SerializeAsString(),
              decoded.events(i).SerializeAsString());
    EXPECT_EQ(leaf.source(), "prod/p1");
    EXPECT_GT(leaf.received_at().seconds(), 0);
  }
  // Encoded events are held to the same rules: the certificate's proxy,
  // consecutive sequences; and they must be events at all.
  AppendAuditRequest bad;
  warden::v1::AuditEvent other;
  other.set_proxy_id("p2");
  other.set_environment("prod");
  other.set_sequence(4);
  bad.add_encoded_events(other.SerializeAsString());
  EXPECT_EQ(cp_->audit_ingest()
                ->AppendFrom({"p1", "prod"}, bad, absl::Now(), &response)
                .code(),
            absl::StatusCode::kPermissionDenied);
  bad.set_encoded_events(0, "\xff\xff\xff");  // names no proxy at all
  EXPECT_EQ(cp_->audit_ingest()
                ->AppendFrom({"p1", "prod"}, bad, absl::Now(), &response)
                .code(),
            absl::StatusCode::kInvalidArgument);
  AppendAuditRequest both = Events("p1", "prod", 4, 4);
  both.add_encoded_events(both.events(0).SerializeAsString());
  EXPECT_EQ(cp_->audit_ingest()
                ->AppendFrom({"p1", "prod"}, both, absl::Now(), &response)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(All().size(), 3u);
}

// An event that does not decode (invalid UTF-8 from a proxy that did not
// repair it) is recorded as undecodable under its sequence instead of
// stopping that proxy's trail; oversized events are cut at ingest; and
// entries are read in pages bounded in bytes.
TEST_F(AuditLogTest, EveryEventIsRecordableAndEveryPageReadable) {
  AppendAuditRequest request;
  warden::v1::AuditEvent bad;
  bad.set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  bad.mutable_statement()->set_text("SELECT 1 /* \xff */");  // not UTF-8
  warden::v1::AuditEvent tail;
  tail.set_proxy_id("p1");
  tail.set_environment("prod");
  tail.set_sequence(1);
  std::string bytes;
  bad.SerializePartialToString(&bytes);
  const std::string encoded_bad = bytes + tail.SerializeAsString();
  request.add_encoded_events(encoded_bad);
  warden::v1::AuditEvent big;
  big.set_kind(warden::v1::AUDIT_EVENT_KIND_AUTHENTICATION);
  big.mutable_authentication()->set_claimed_user(std::string(3 << 20, 'u'));
  tail.set_sequence(2);
  request.add_encoded_events(big.SerializeAsString() + tail.SerializeAsString());
  AppendAuditResponse response;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom({"p1", "prod"}, request, absl::Now(), &response)
                  .ok());
  EXPECT_EQ(response.acknowledged_sequence(), 2u);
  auto entries = All();
  ASSERT_EQ(entries.size(), 2u);
  warden::v1::AuditLeaf leaf;
  ASSERT_TRUE(leaf.ParseFromString(audit::SplitLeaf(entries[0].leaf())->second));
  EXPECT_EQ(leaf.event().sequence(), 1u);
  EXPECT_EQ(leaf.event().proxy_id(), "p1");
  EXPECT_EQ(leaf.event().repairs().undecodable(), encoded_bad);
  ASSERT_TRUE(leaf.ParseFromString(audit::SplitLeaf(entries[1].leaf())->second));
  EXPECT_EQ(leaf.event().authentication().claimed_user().size(), 4096u);
  EXPECT_EQ(leaf.event().repairs().truncated(0), "authentication.claimed_user");
  EXPECT_LT(entries[1].leaf().size(), 8192u);
  // The control plane's own events (an unauthenticated Login's provider)
  // are bounded the same way.
  ASSERT_TRUE(Append("p1", "prod", 3, 3).ok());
  // Paging: at most the byte budget, but never less than one entry.
  auto page = cp_->ledger()->Entries(0, 100, 1000, 100);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->size(), 1u);
  page = cp_->ledger()->Entries(0, 100, 1000, 1 << 20);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->size(), 3u);
}

TEST_F(AuditLogTest, TheLogReplaysToTheSameTree) {
  ASSERT_TRUE(Append("p1", "prod", 1, 20).ok());
  ASSERT_TRUE(Append("p2", "dev", 1, 7).ok());
  const std::string root = cp_->ledger()->Tree()->Root();
  // A fresh store caught up from the same log: what a restarted (or, with
  // etcd, another) control plane rebuilds.
  const std::string dir = cp_->dir() + "/replayed";
  auto store = store::Store::Open(dir);
  ASSERT_TRUE(store.ok());
  state::StateMachine replay(cp_->log(), store->get());
  ASSERT_TRUE(replay.CatchUp().ok());
  audit::Ledger ledger(store->get());
  EXPECT_EQ(ledger.Tree()->size(), 27u);
  EXPECT_EQ(ledger.Tree()->Root(), root);
  EXPECT_EQ(*ledger.Acknowledged("dev/p2"), 7u);
}

TEST_F(AuditLogTest, CheckpointsAreSignedNotesOfTheTree) {
  ASSERT_TRUE(Append("p1", "prod", 1, 4).ok());
  auto signed_cp = cp_->checkpointer()->SignNow();
  ASSERT_TRUE(signed_cp.ok()) << signed_cp.status();
  EXPECT_EQ(signed_cp->size, 4u);
  auto text = audit::VerifyNote(signed_cp->note,
                                cp_->checkpointer()->verifier_key());
  ASSERT_TRUE(text.ok()) << text.status();
  auto body = audit::ParseCheckpointBody(*text);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->size, 4u);
  EXPECT_EQ(body->root_hash, cp_->ledger()->Tree()->Root());
  EXPECT_EQ(body->origin, cp_->checkpointer()->origin());
  // Another key's verifier refuses it.
  auto other = crypto::GenerateEd25519Key();
  auto other_vkey = audit::VerifierKey(cp_->checkpointer()->origin(),
                                       other->public_pem);
  EXPECT_FALSE(audit::VerifyNote(signed_cp->note, *other_vkey).ok());
  // Unchanged tree: the same checkpoint; a new event: a new one.
  EXPECT_EQ(cp_->checkpointer()->SignNow()->note, signed_cp->note);
  ASSERT_TRUE(Append("p1", "prod", 5, 5).ok());
  EXPECT_EQ(cp_->checkpointer()->SignNow()->size, 5u);
}

TEST_F(AuditLogTest, OverGrpcWithTheProxyCertificateAndAnAuditReader) {
  auto ingest = warden::v1::AuditIngest::NewStub(cp_->ProxyChannel("p1", "prod"));
  AppendAuditResponse response;
  grpc::ClientContext ctx;
  grpc::Status s = ingest->Append(&ctx, Events("p1", "prod", 1, 3), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.acknowledged_sequence(), 3u);
  // Without a certificate: refused.
  auto anonymous = warden::v1::AuditIngest::NewStub(cp_->Channel());
  grpc::ClientContext ctx2;
  EXPECT_EQ(anonymous->Append(&ctx2, Events("p1", "prod", 4, 4), &response)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  auto log = warden::v1::AuditLog::NewStub(cp_->Channel());
  const std::string reader =
      "Bearer " + cp_->Mint({warden::v1::TOKEN_SCOPE_AUDIT_READ});
  warden::v1::GetCheckpointResponse checkpoint;
  grpc::ClientContext c1;
  c1.AddMetadata("authorization", reader);
  ASSERT_TRUE(log->GetCheckpoint(&c1, {}, &checkpoint).ok());
  EXPECT_EQ(checkpoint.tree_size(), 3u);
  EXPECT_TRUE(
      audit::VerifyNote(checkpoint.checkpoint(), checkpoint.verifier_key())
          .ok());
  warden::v1::GetEntriesRequest get;
  get.set_start(0);
  get.set_end(10);
  warden::v1::GetEntriesResponse entries;
  grpc::ClientContext c2;
  c2.AddMetadata("authorization", reader);
  ASSERT_TRUE(log->GetEntries(&c2, get, &entries).ok());
  ASSERT_EQ(entries.entries_size(), 3);
  warden::v1::GetInclusionProofRequest inc;
  inc.set_index(1);
  warden::v1::GetInclusionProofResponse proof;
  grpc::ClientContext c3;
  c3.AddMetadata("authorization", reader);
  ASSERT_TRUE(log->GetInclusionProof(&c3, inc, &proof).ok());
  std::vector<std::string> hashes(proof.hashes().begin(), proof.hashes().end());
  EXPECT_TRUE(audit::VerifyInclusion(audit::LeafHash(entries.entries(1).leaf()),
                                     1, proof.tree_size(), hashes,
                                     checkpoint.root_hash())
                  .ok());
}

class AuditExportTest : public AuditLogTest {
 protected:
  void SetUp() override {
    AuditLogTest::SetUp();
    reader_ = "Bearer " + cp_->Mint({warden::v1::TOKEN_SCOPE_AUDIT_READ});
    stub_ = warden::v1::AuditExport::NewStub(cp_->Channel());
  }
  // Appends `n` statements from p1 (every third refused), from `from`.
  void AppendStatements(uint64_t from, uint64_t n) {
    auto request = Events("p1", "prod", from, from + n - 1);
    for (auto& e : *request.mutable_events()) {
      e.mutable_statement()->add_command_tags("SELECT");
      e.mutable_statement()->set_decision(
          e.sequence() % 3 == 0 ? warden::v1::POLICY_ACTION_DENY
                                : warden::v1::POLICY_ACTION_ALLOW);
    }
    AppendAuditResponse response;
    ASSERT_TRUE(cp_->audit_ingest()
                    ->AppendFrom({"p1", "prod"}, request, absl::Now(), &response)
                    .ok());
  }
  // ListEvents as an audit reader, in OCSF; fails the test if the call does.
  warden::v1::ListEventsResponse ListOcsf(
      warden::v1::ListEventsRequest list = {}) {
    list.set_format(warden::v1::AUDIT_FORMAT_OCSF_JSON);
    warden::v1::ListEventsResponse page;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", reader_);
    EXPECT_TRUE(stub_->ListEvents(&ctx, list, &page).ok());
    return page;
  }
  std::string reader_;
  std::unique_ptr<warden::v1::AuditExport::Stub> stub_;
};

// Red team: `audit tail --follow` went on streaming after its token was
// revoked. The stream ends, and nothing recorded after the revocation is
// sent on it.
TEST_F(AuditExportTest, SubscribeEndsWhenItsTokenIsRevoked) {
  auto token = cp_->tokens()->Create("siem", {warden::v1::TOKEN_SCOPE_AUDIT_READ},
                                     absl::ZeroDuration(), "test", absl::Now());
  ASSERT_TRUE(token.ok()) << token.status();
  AppendStatements(1, 3);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token->token);
  // A stream that outlives its token fails the test by its deadline.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  auto reader = stub_->Subscribe(&ctx, {});
  warden::v1::SubscribeResponse got;
  int events = 0;
  while (events < 3 && reader->Read(&got)) {
    if (got.has_event()) ++events;
  }
  ASSERT_EQ(events, 3);
  ASSERT_TRUE(cp_->tokens()->Revoke(token->info.id(), absl::Now()).ok());
  AppendStatements(4, 3);  // after the revocation
  while (reader->Read(&got)) {
    EXPECT_FALSE(got.has_event()) << "sent after the revocation: "
                                  << got.event().index();
  }
  const grpc::Status ended = reader->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAUTHENTICATED)
      << ended.error_message();
  EXPECT_NE(ended.error_message().find("revoked"), std::string::npos)
      << ended.error_message();
}

TEST_F(AuditExportTest, SubscribeFollowsTheLogWithCheckpointsAndResumes) {
  AppendStatements(1, 10);
  warden::v1::SubscribeRequest request;
  request.mutable_checkpoint_interval()->set_nanos(100000000);  // 100 ms
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", reader_);
  auto reader = stub_->Subscribe(&ctx, request);
  std::vector<uint64_t> indexes;
  int checkpoints = 0;
  uint64_t cursor = 0;
  warden::v1::SubscribeResponse got;
  bool appended_more = false;
  while (indexes.size() < 15 && reader->Read(&got)) {
    cursor = got.cursor();
    if (got.has_checkpoint()) {
      ++checkpoints;
      auto cp = audit::VerifyCheckpoint(got.checkpoint().checkpoint(),
                                        cp_->checkpointer()->verifier_key());
      ASSERT_TRUE(cp.ok()) << cp.status();
      EXPECT_GE(cp->size, cursor);  // covers everything sent before it
    } else {
      indexes.push_back(got.event().index());
      EXPECT_EQ(got.event().record().event().sequence(), got.event().index() + 1);
      EXPECT_EQ(got.cursor(), got.event().index() + 1);
    }
    if (indexes.size() == 10 && !appended_more) {
      AppendStatements(11, 5);  // arrives while subscribed
      appended_more = true;
    }
  }
  ctx.TryCancel();
  reader->Finish();
  ASSERT_EQ(indexes.size(), 15u);
  for (size_t i = 0; i < indexes.size(); ++i) EXPECT_EQ(indexes[i], i);
  EXPECT_GE(checkpoints, 1);
  // Resumed from a cursor: nothing before it, nothing missing after it.
  warden::v1::SubscribeRequest resume;
  resume.set_cursor(12);
  grpc::ClientContext ctx2;
  ctx2.AddMetadata("authorization", reader_);
  auto again = stub_->Subscribe(&ctx2, resume);
  std::vector<uint64_t> rest;
  while (rest.size() < 3 && again->Read(&got)) {
    if (got.has_event()) rest.push_back(got.event().index());
  }
  ctx2.TryCancel();
  again->Finish();
  EXPECT_EQ(rest, (std::vector<uint64_t>{12, 13, 14}));
}

TEST_F(AuditExportTest, FiltersAndOcsf) {
  AppendStatements(1, 9);
  warden::v1::ListEventsRequest list;
  list.mutable_filter()->add_decisions(warden::v1::POLICY_ACTION_DENY);
  list.set_format(warden::v1::AUDIT_FORMAT_OCSF_JSON);
  warden::v1::ListEventsResponse page;
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", reader_);
  ASSERT_TRUE(stub_->ListEvents(&ctx, list, &page).ok());
  ASSERT_EQ(page.events_size(), 3);  // sequences 3, 6, 9
  EXPECT_EQ(page.next_cursor(), 9u);
  const auto ocsf = nlohmann::json::parse(page.events(0).ocsf_json());
  EXPECT_EQ(ocsf["class_uid"], 6005);
  EXPECT_EQ(ocsf["activity_id"], 4);  // Query
  EXPECT_EQ(ocsf["type_uid"], 600504);
  EXPECT_EQ(ocsf["status"], "Failure");
  EXPECT_EQ(ocsf["actor"]["user"]["name"], "alice");
  EXPECT_EQ(ocsf["unmapped"]["warden_index"], 2);
  EXPECT_EQ(ocsf["metadata"]["uid"], "prod/p1/3");
  EXPECT_FALSE(page.events(0).leaf().empty());  // verifiable bytes too
  // Users that match nobody; environments that match everybody.
  warden::v1::ListEventsRequest nobody;
  nobody.mutable_filter()->add_users("mallory");
  warden::v1::ListEventsResponse none;
  grpc::ClientContext ctx2;
  ctx2.AddMetadata("authorization", reader_);
  ASSERT_TRUE(stub_->ListEvents(&ctx2, nobody, &none).ok());
  EXPECT_EQ(none.events_size(), 0);
  EXPECT_EQ(none.next_cursor(), 9u);
  // Paging: 4 at a time.
  warden::v1::ListEventsRequest paged;
  paged.set_page_size(4);
  std::vector<uint64_t> seen;
  for (int i = 0; i < 5 && seen.size() < 9; ++i) {
    warden::v1::ListEventsResponse p;
    grpc::ClientContext c;
    c.AddMetadata("authorization", reader_);
    ASSERT_TRUE(stub_->ListEvents(&c, paged, &p).ok());
    for (const auto& e : p.events()) seen.push_back(e.index());
    paged.set_cursor(p.next_cursor());
  }
  EXPECT_EQ(seen.size(), 9u);
  EXPECT_EQ(seen.back(), 8u);
}

// Red team pass 7: a statement with U+2028 (or U+2029, U+0085) split one
// OCSF line into several for readers that split on Unicode line breaks.
TEST_F(AuditExportTest, OcsfRecordsStayOneLineForEveryLineSplitter) {
  AppendAuditRequest request = Events("p1", "prod", 1, 1);
  const std::string text =
      "SELECT 'a\xE2\x80\xA8" "b\xE2\x80\xA9" "c\xC2\x85" "d'";
  request.mutable_events(0)->mutable_statement()->set_text(text);
  AppendAuditResponse response;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom({"p1", "prod"}, request, absl::Now(), &response)
                  .ok());
  const warden::v1::ListEventsResponse page = ListOcsf();
  ASSERT_EQ(page.events_size(), 1);
  const std::string& line = page.events(0).ocsf_json();
  for (const char* brk : {"\n", "\r", "\xE2\x80\xA8", "\xE2\x80\xA9",
                          "\xC2\x85"}) {
    EXPECT_EQ(line.find(brk), std::string::npos) << line;
  }
  EXPECT_NE(line.find("\\u2028"), std::string::npos) << line;
  // Escaped, not lost: the statement reads back exactly.
  EXPECT_NE(nlohmann::json::parse(line).dump().find("b\xE2\x80\xA9"),
            std::string::npos);
}

// Unknown field 1000 as `depth` nested groups: bytes protobuf skips, to
// its recursion limit.
std::string NestedGroups(int depth) {
  std::string out;
  for (int i = 0; i < depth; ++i) out += "\xC3\x3E";  // field 1000, group
  for (int i = 0; i < depth; ++i) out += "\xC4\x3E";  // its end
  return out;
}

// Red team pass 5: an event whose unknown groups nest just within the
// parser's limit passed ingest, and one level deeper, in the leaf and in
// every reader's response, did not parse: tail, search, the SIEM stream
// and verify failed for good. Ingest drops unknown fields (and says how
// many bytes); readers parse leaves with room for anything ever taken
// and hand on no unknown fields.
TEST_F(AuditExportTest, NestedUnknownFieldsCannotMakeTheLogUnreadable) {
  AppendAuditRequest request;
  const AppendAuditRequest plain = Events("p1", "prod", 1, 3);
  const int depths[] = {90, 99, 100};
  for (int i = 0; i < 3; ++i) {
    request.add_encoded_events(plain.events(i).SerializeAsString() +
                               NestedGroups(depths[i]));
  }
  AppendAuditResponse response;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom({"p1", "prod"}, request, absl::Now(), &response)
                  .ok());
  ASSERT_EQ(response.acknowledged_sequence(), 3u);
  const auto entries = All();
  ASSERT_EQ(entries.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    warden::v1::AuditLeaf leaf;  // the default parser reads it
    ASSERT_TRUE(leaf.ParseFromString(audit::SplitLeaf(entries[i].leaf())->second));
    EXPECT_EQ(leaf.event().repairs().unknown_field_bytes(), 4u * depths[i]);
    EXPECT_EQ(leaf.event().sequence(), static_cast<uint64_t>(i + 1));
  }
  for (auto format : {warden::v1::AUDIT_FORMAT_NATIVE,
                      warden::v1::AUDIT_FORMAT_OCSF_JSON}) {
    warden::v1::ListEventsRequest list;
    list.set_format(format);
    list.mutable_filter()->add_users("alice");
    warden::v1::ListEventsResponse page;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", reader_);
    ASSERT_TRUE(stub_->ListEvents(&ctx, list, &page).ok());
    EXPECT_EQ(page.events_size(), 3);
  }
  std::vector<audit::ExportedEntry> exported;
  for (const auto& e : entries) exported.push_back({e.index(), e.leaf()});
  auto cp = cp_->checkpointer()->SignNow();
  ASSERT_TRUE(cp.ok());
  const audit::VerifyReport report = audit::VerifyExport(
      exported, cp->note, cp_->checkpointer()->verifier_key());
  EXPECT_TRUE(report.ok) << report.message;

  // A leaf an older control plane stored with such groups (its event at
  // the limit, the leaf one level past it) reads too, without them.
  warden::v1::AuditLeaf old;
  *old.mutable_event() = plain.events(0);
  old.set_source("prod/p1");
  const std::string event_bytes =
      plain.events(0).SerializeAsString() + NestedGroups(100);
  std::string bytes = "\x0a";  // field 1 (event), length-delimited
  for (uint64_t n = event_bytes.size();; n >>= 7) {
    if (n < 0x80) {
      bytes.push_back(static_cast<char>(n));
      break;
    }
    bytes.push_back(static_cast<char>((n & 0x7f) | 0x80));
  }
  bytes += event_bytes;
  warden::v1::AuditLeaf strict;
  EXPECT_FALSE(strict.ParseFromString(bytes));  // protobuf's default limit
  warden::v1::AuditLeaf lenient;
  ASSERT_TRUE(audit::ParseAuditLeaf(bytes, &lenient));
  EXPECT_EQ(lenient.event().sequence(), 1u);
  // What Export does before encoding it into a response.
  lenient.DiscardUnknownFields();
  EXPECT_TRUE(strict.ParseFromString(lenient.SerializeAsString()));
  EXPECT_FALSE(audit::ParseAuditLeaf("\xff\xff", &lenient));
}

// Red team pass 5: an admin body under kind STATEMENT (or none) escaped
// the kind check and printed as an administrator's token creation. A
// proxy's admin body is dropped (its bytes kept), whatever the kind, and
// the event is no API activity in OCSF.
TEST_F(AuditExportTest, ProxiesCannotRecordAnAdministratorsAction) {
  AppendAuditRequest request = Events("p1", "prod", 1, 2);
  for (auto& e : *request.mutable_events()) {
    e.clear_statement();
    e.mutable_identity()->set_user("token:bootstrap-admin");
    e.mutable_admin()->set_actor("token:bootstrap-admin");
    e.mutable_admin()->set_action("tokens.create");
    e.mutable_admin()->set_success(true);
  }
  request.mutable_events(0)->set_kind(warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  request.mutable_events(1)->set_kind(
      warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED);
  AppendAuditResponse response;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom({"p1", "prod"}, request, absl::Now(), &response)
                  .ok());
  const auto leaves = Leaves();
  ASSERT_EQ(leaves.size(), 2u);
  for (const auto& leaf : leaves) {
    EXPECT_FALSE(leaf.event().has_admin());
    EXPECT_EQ(leaf.event().kind(), warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED);
    EXPECT_TRUE(leaf.event().repairs().unauthorized_body());
    warden::v1::AdminAction kept;
    ASSERT_TRUE(kept.ParseFromString(leaf.event().repairs().undecodable()));
    EXPECT_EQ(kept.action(), "tokens.create");
  }
  EXPECT_EQ(leaves[0].event().repairs().unauthorized_kind(),
            warden::v1::AUDIT_EVENT_KIND_STATEMENT);
  const warden::v1::ListEventsResponse page = ListOcsf();
  ASSERT_EQ(page.events_size(), 2);
  for (const auto& e : page.events()) {
    const auto ocsf = nlohmann::json::parse(e.ocsf_json());
    EXPECT_NE(ocsf["class_uid"], 6003);
    EXPECT_EQ(ocsf["unmapped"]["warden_repairs"]["unauthorized_body"], true);
  }
}

// Red team pass 6: a proxy's key planted repairs only warden-control
// writes ("undecodable", claimed kinds) and 300,000 "cut" entries. A proxy
// keeps only what it may say of its own repairs, bounded.
TEST_F(AuditExportTest, ProxiesCannotPlantControlPlaneRepairs) {
  AppendAuditRequest request = Events("p1", "prod", 1, 1);
  warden::v1::EventRepairs* r = request.mutable_events(0)->mutable_repairs();
  r->set_undecodable("forged");
  r->set_unauthorized_kind(warden::v1::AUDIT_EVENT_KIND_ADMIN);
  r->set_unauthorized_environment("control");
  r->set_unknown_field_bytes(99);
  for (int i = 0; i < 1000; ++i) r->add_truncated("statement.text");
  r->add_invalid_utf8(std::string(300, 'x') + "\xc3\xa9");
  // Red team pass 7: free text here rendered in `tail` as warden-control's
  // own words; only names of the event's fields are kept.
  r->add_invalid_utf8(
      "identity.user; cut: statement.text; claimed kind ADMIN; sent an "
      "admin action] control/warden-control #1 token:bootstrap-admin");
  r->add_invalid_utf8("identity.user");
  r->add_invalid_utf8("statement.text.x");
  r->add_invalid_utf8("nosuch");
  r->add_invalid_utf8("");
  AppendAuditResponse response;
  ASSERT_TRUE(cp_->audit_ingest()
                  ->AppendFrom({"p1", "prod"}, request, absl::Now(), &response)
                  .ok());
  const auto leaves = Leaves();
  ASSERT_EQ(leaves.size(), 1u);
  const warden::v1::EventRepairs& kept = leaves[0].event().repairs();
  EXPECT_TRUE(kept.undecodable().empty());
  EXPECT_EQ(kept.unauthorized_kind(), warden::v1::AUDIT_EVENT_KIND_UNSPECIFIED);
  EXPECT_TRUE(kept.unauthorized_environment().empty());
  EXPECT_EQ(kept.unknown_field_bytes(), 0u);
  EXPECT_EQ(kept.truncated_size(), 32);
  ASSERT_EQ(kept.invalid_utf8_size(), 1);
  EXPECT_EQ(kept.invalid_utf8(0), "identity.user");
}

TEST_F(AuditExportTest, ControlPlaneActionsAreInTheLog) {
  const std::string admin =
      "Bearer " + cp_->Mint({warden::v1::TOKEN_SCOPE_ADMIN});
  auto policy = warden::v1::PolicyService::NewStub(cp_->Channel());
  warden::v1::PushPolicyRequest push;
  auto* src = push.add_sources();
  src->set_name("p.yaml");
  src->set_text(
      "apiVersion: warden/v1\nkind: Policy\nmetadata: { name: p }\n"
      "spec:\n  environments: [prod]\n  rules:\n    - name: r\n"
      "      match: { commands: [DROP TABLE] }\n      action: deny\n");
  push.set_message("ticket-42");
  warden::v1::PushPolicyResponse pushed;
  grpc::ClientContext c1;
  c1.AddMetadata("authorization", admin);
  ASSERT_TRUE(policy->PushPolicy(&c1, push, &pushed).ok());
  auto tokens = warden::v1::TokenService::NewStub(cp_->Channel());
  warden::v1::CreateTokenRequest create;
  create.set_name("ci");
  create.add_scopes(warden::v1::TOKEN_SCOPE_POLICY_READ);
  warden::v1::CreateTokenResponse created;
  grpc::ClientContext c2;
  c2.AddMetadata("authorization", admin);
  ASSERT_TRUE(tokens->CreateToken(&c2, create, &created).ok());
  warden::v1::RevokeTokenRequest revoke;
  revoke.set_id(created.info().id());
  warden::v1::RevokeTokenResponse revoked;
  grpc::ClientContext c3;
  c3.AddMetadata("authorization", admin);
  ASSERT_TRUE(tokens->RevokeToken(&c3, revoke, &revoked).ok());

  warden::v1::ListEventsRequest list;
  list.mutable_filter()->add_kinds(warden::v1::AUDIT_EVENT_KIND_ADMIN);
  warden::v1::ListEventsResponse page;
  grpc::ClientContext c4;
  c4.AddMetadata("authorization", reader_);
  ASSERT_TRUE(stub_->ListEvents(&c4, list, &page).ok());
  std::vector<std::string> actions;
  for (const auto& e : page.events()) {
    const auto& ev = e.record().event();
    EXPECT_EQ(e.record().source(), "control/warden-control");
    EXPECT_EQ(ev.sequence(), actions.size() + 1);
    EXPECT_EQ(ev.admin().actor(), "token:t");
    actions.push_back(ev.admin().action() + " " + ev.admin().target());
  }
  EXPECT_THAT(actions,
              ::testing::ElementsAre(
                  absl::StrCat("policy.push revision ", pushed.revision()),
                  "token.create " + created.info().id(),
                  "token.revoke " + created.info().id()));
  EXPECT_THAT(page.events(0).record().event().admin().detail(),
              HasSubstr("ticket-42"));
  // No proxy can write as the control plane, in any spelling (red team:
  // "Control", "control.", and proxy id "warden-control" elsewhere).
  EXPECT_FALSE(cp_->tokens()
                   ->CreateBootstrap("x", "control", "warden-control",
                                     absl::Hours(1), "t", absl::Now())
                   .ok());
  for (const char* env : {"Control", "CONTROL", "control.", "control_-"}) {
    auto t = cp_->tokens()->CreateBootstrap("x", env, "", absl::Hours(1), "t",
                                            absl::Now());
    EXPECT_FALSE(t.ok()) << env;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr("reserved"));
  }
  for (const char* id : {"warden-control", "Warden-Control", "warden-control."}) {
    EXPECT_FALSE(cp_->tokens()
                     ->CreateBootstrap("x", "dev", id, absl::Hours(1), "t",
                                       absl::Now())
                     .ok())
        << id;
  }
  auto ingest =
      warden::v1::AuditIngest::NewStub(cp_->ProxyChannel("warden-control", "control"));
  AppendAuditResponse response;
  grpc::ClientContext c5;
  EXPECT_EQ(ingest->Append(&c5, Events("warden-control", "control", 4, 4), &response)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AuditExportTest, SubscribeFromATime) {
  AppendStatements(1, 3);
  const absl::Time between = absl::Now();
  absl::SleepFor(absl::Milliseconds(5));
  AppendStatements(4, 2);
  auto first = audit::FirstIndexAtOrAfter(*cp_->ledger(), between);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, 3u);
  EXPECT_EQ(*audit::FirstIndexAtOrAfter(*cp_->ledger(),
                                         absl::Now() + absl::Hours(1)),
            5u);
  EXPECT_EQ(*audit::FirstIndexAtOrAfter(*cp_->ledger(), absl::UnixEpoch()),
            0u);
}

}  // namespace
}  // namespace warden::controlplane
