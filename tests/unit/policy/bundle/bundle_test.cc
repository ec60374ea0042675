#include "policy/bundle/bundle.h"

#include <string>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "common/crypto.h"
#include "gtest/gtest.h"
#include "policy/lang/compile.h"

namespace warden::policy::bundle {
namespace {

using ::warden::v1::PolicyBundle;
using ::warden::v1::SignedBundle;

constexpr char kPolicy[] = R"(apiVersion: warden/v1
kind: Policy
metadata:
  name: guardrails
spec:
  environments: [prod]
  rules:
    - name: no-drop
      match:
        commands: ["DROP TABLE"]
      action: deny
)";

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto key = crypto::GenerateEd25519Key();
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *key;
    ASSERT_TRUE(AddTrustedKey(key_.public_pem, &keys_).ok());
    auto compiled = lang::Compile({{"prod.yaml", kPolicy}});
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    policy_ = *compiled;
    meta_.revision = 7;
    meta_.parent_revision = 6;
    meta_.created_by = "ci:deploy-policies";
    meta_.created_at = absl::FromUnixMicros(1764160000123456);
    meta_.message = "deny DROP TABLE in prod";
    auto signed_bundle = SignBundle(policy_, meta_, key_.private_pem);
    ASSERT_TRUE(signed_bundle.ok()) << signed_bundle.status();
    signed_ = *signed_bundle;
  }

  // Re-signs `b` with the test key after a tamper, so a check after the
  // signature is the one that fails.
  void Resign(SignedBundle* b) {
    auto sig = crypto::Ed25519Sign(key_.private_pem, CanonicalSigningBytes(*b));
    ASSERT_TRUE(sig.ok());
    b->set_signature(*sig);
  }

  static void ExpectError(const absl::StatusOr<PolicyBundle>& got,
                          absl::StatusCode code, absl::string_view text) {
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), code) << got.status();
    EXPECT_TRUE(absl::StrContains(got.status().message(), text))
        << got.status();
  }

  crypto::Ed25519KeyPair key_;
  TrustedKeys keys_;
  PolicyBundle policy_;
  BundleMeta meta_;
  SignedBundle signed_;
};

TEST_F(BundleTest, SignThenVerifyRoundTrip) {
  EXPECT_EQ(signed_.revision(), 7u);
  EXPECT_EQ(signed_.parent_revision(), 6u);
  EXPECT_EQ(signed_.key_id(), *crypto::Ed25519KeyId(key_.public_pem));
  EXPECT_EQ(signed_.digest(),
            crypto::HexEncode(crypto::Sha256(signed_.bundle())));
  EXPECT_EQ(signed_.created_at().seconds(), 1764160000);
  EXPECT_EQ(signed_.created_at().nanos(), 123456000);
  EXPECT_EQ(signed_.signature().size(), 64u);

  auto wire = DecodeSignedBundle(signed_.SerializeAsString());
  ASSERT_TRUE(wire.ok()) << wire.status();
  auto got = VerifyBundle(*wire, keys_, /*running_revision=*/6);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->digest(), policy_.digest());
  ASSERT_EQ(got->policies_size(), 1);
  EXPECT_EQ(got->policies(0).name(), "guardrails");
  // Nothing running yet (start-up, or last-known-good from disk).
  EXPECT_TRUE(VerifyBundle(*wire, keys_, 0).ok());
}

TEST_F(BundleTest, CanonicalBytesStartWithDomainAndIgnoreSignature) {
  const std::string bytes = CanonicalSigningBytes(signed_);
  EXPECT_TRUE(absl::StartsWith(bytes, "warden-bundle-v1\n"));
  SignedBundle unsigned_copy = signed_;
  unsigned_copy.clear_signature();
  EXPECT_EQ(CanonicalSigningBytes(unsigned_copy), bytes);
  // Domain prefix (17), 5 fixed 8-byte integers (revision, parent,
  // seconds, nanos, rollback_of), 5 length-prefixed fields.
  EXPECT_EQ(bytes.size(),
            17 + 5 * 8 + 5 * 8 + signed_.bundle().size() +
                signed_.digest().size() + signed_.key_id().size() +
                signed_.created_by().size() + signed_.message().size());
}

TEST_F(BundleTest, FlippedBundleByteFailsTheSignature) {
  SignedBundle b = signed_;
  (*b.mutable_bundle())[3] ^= 0x20;
  ExpectError(VerifyBundle(b, keys_, 6), absl::StatusCode::kPermissionDenied,
              "signature does not verify");
}

TEST_F(BundleTest, ChangedDigestFailsTheSignature) {
  SignedBundle b = signed_;
  b.set_digest(std::string(64, '0'));
  ExpectError(VerifyBundle(b, keys_, 6), absl::StatusCode::kPermissionDenied,
              "signature does not verify");
}

TEST_F(BundleTest, SignedDigestThatDoesNotMatchTheBytesIsDataLoss) {
  SignedBundle b = signed_;
  b.set_digest(std::string(64, '0'));
  Resign(&b);
  ExpectError(VerifyBundle(b, keys_, 6), absl::StatusCode::kDataLoss,
              "does not match the bundle bytes");
}

TEST_F(BundleTest, SignedBytesThatAreNotAPolicyBundleAreInvalidArgument) {
  SignedBundle b = signed_;
  b.set_bundle("\xff\xff\xff");
  b.set_digest(crypto::HexEncode(crypto::Sha256(b.bundle())));
  Resign(&b);
  ExpectError(VerifyBundle(b, keys_, 6), absl::StatusCode::kInvalidArgument,
              "do not parse as warden.v1.PolicyBundle");
}

TEST_F(BundleTest, SignedBundleWithWrongContentDigestIsDataLoss) {
  PolicyBundle edited = policy_;
  edited.mutable_policies(0)->set_name("edited-after-compile");
  SignedBundle b = signed_;
  b.set_bundle(edited.SerializeAsString());
  b.set_digest(crypto::HexEncode(crypto::Sha256(b.bundle())));
  Resign(&b);
  ExpectError(VerifyBundle(b, keys_, 6), absl::StatusCode::kDataLoss,
              "content digest");
}

TEST_F(BundleTest, ChangedSignatureIsPermissionDenied) {
  SignedBundle b = signed_;
  (*b.mutable_signature())[0] ^= 0x01;
  ExpectError(VerifyBundle(b, keys_, 6), absl::StatusCode::kPermissionDenied,
              "signature does not verify");
  b.clear_signature();
  ExpectError(VerifyBundle(b, keys_, 6), absl::StatusCode::kPermissionDenied,
              "signature does not verify");
}

TEST_F(BundleTest, UnknownKeyIdIsPermissionDenied) {
  SignedBundle b = signed_;
  b.set_key_id("0123456789abcdef");
  ExpectError(VerifyBundle(b, keys_, 6), absl::StatusCode::kPermissionDenied,
              "unknown key id '0123456789abcdef'");
  // Signed by a key the proxy does not trust.
  auto other = crypto::GenerateEd25519Key();
  ASSERT_TRUE(other.ok());
  auto foreign = SignBundle(policy_, meta_, other->private_pem);
  ASSERT_TRUE(foreign.ok());
  ExpectError(VerifyBundle(*foreign, keys_, 6),
              absl::StatusCode::kPermissionDenied, "unknown key id");
  // No keys at all.
  ExpectError(VerifyBundle(signed_, TrustedKeys(), 6),
              absl::StatusCode::kPermissionDenied, "unknown key id");
}

TEST_F(BundleTest, KeyIdPointingAtAnotherTrustedKeyFailsTheSignature) {
  auto other = crypto::GenerateEd25519Key();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(AddTrustedKey(other->public_pem, &keys_).ok());
  SignedBundle b = signed_;
  b.set_key_id(*crypto::Ed25519KeyId(other->public_pem));
  ExpectError(VerifyBundle(b, keys_, 6), absl::StatusCode::kPermissionDenied,
              "signature does not verify");
}

TEST_F(BundleTest, ChangedMetadataFailsTheSignature) {
  SignedBundle by = signed_;
  by.set_created_by("mallory");
  SignedBundle msg = signed_;
  msg.set_message("deny DROP TABLE in prod!");
  SignedBundle rev = signed_;
  rev.set_revision(8);
  SignedBundle parent = signed_;
  parent.set_parent_revision(5);
  SignedBundle when = signed_;
  when.mutable_created_at()->set_nanos(0);
  SignedBundle rollback = signed_;
  rollback.set_rollback_of(3);
  for (const SignedBundle* b : {&by, &msg, &rev, &parent, &when, &rollback}) {
    ExpectError(VerifyBundle(*b, keys_, 0), absl::StatusCode::kPermissionDenied,
                "signature does not verify");
  }
}

TEST_F(BundleTest, LowerOrSameRevisionIsRefused) {
  ExpectError(VerifyBundle(signed_, keys_, 9),
              absl::StatusCode::kFailedPrecondition,
              "older than running revision 9 and not signed as a rollback");
  ExpectError(VerifyBundle(signed_, keys_, 7),
              absl::StatusCode::kFailedPrecondition, "already running");
  // Lowering the revision in transit breaks the signature first.
  SignedBundle b = signed_;
  b.set_revision(6);
  ExpectError(VerifyBundle(b, keys_, 0), absl::StatusCode::kPermissionDenied,
              "signature does not verify");
}

TEST_F(BundleTest, LowerRevisionSignedAsRollbackIsAccepted) {
  BundleMeta meta = meta_;
  meta.rollback_of = 3;
  meta.message = "roll back to 3";
  auto rollback = SignBundle(policy_, meta, key_.private_pem);
  ASSERT_TRUE(rollback.ok()) << rollback.status();
  EXPECT_TRUE(VerifyBundle(*rollback, keys_, 9).ok());
  EXPECT_TRUE(VerifyBundle(*rollback, keys_, 6).ok());
  ExpectError(VerifyBundle(*rollback, keys_, 7),
              absl::StatusCode::kFailedPrecondition, "already running");
}

TEST_F(BundleTest, InconsistentRevisionFieldsAreRefused) {
  for (auto [revision, parent, rollback_of] :
       {std::tuple<uint64_t, uint64_t, uint64_t>{0, 0, 0},
        {5, 5, 0},
        {5, 9, 0},
        {5, 4, 5}}) {
    BundleMeta meta = meta_;
    meta.revision = revision;
    meta.parent_revision = parent;
    meta.rollback_of = rollback_of;
    EXPECT_EQ(SignBundle(policy_, meta, key_.private_pem).status().code(),
              absl::StatusCode::kInvalidArgument);
    // A signer that skips the check still does not get past a proxy.
    SignedBundle b = signed_;
    b.set_revision(revision);
    b.set_parent_revision(parent);
    b.set_rollback_of(rollback_of);
    Resign(&b);
    EXPECT_EQ(VerifyBundle(b, keys_, 0).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(BundleTest, SignRefusesUncompiledBundleAndBadKey) {
  PolicyBundle edited = policy_;
  edited.mutable_policies(0)->set_name("edited");
  EXPECT_EQ(SignBundle(edited, meta_, key_.private_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignBundle(policy_, meta_, key_.public_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SignBundle(policy_, meta_, "garbage").status().code(),
            absl::StatusCode::kInvalidArgument);
  BundleMeta forever = meta_;
  forever.created_at = absl::InfiniteFuture();
  EXPECT_EQ(SignBundle(policy_, forever, key_.private_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AddTrustedKey("garbage", &keys_).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BundleTest, SigningIsDeterministic) {
  auto again = SignBundle(policy_, meta_, key_.private_pem);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->SerializeAsString(), signed_.SerializeAsString());
}

TEST(DecodeSignedBundleTest, GarbageIsInvalidArgument) {
  for (const std::string& garbage :
       {std::string("\xff\xff\xff\xff"), std::string("\x0a\x05\x01", 3),
        std::string("\x1a\xff\xff\xff\xff\x0f", 6),
        std::string("\x3a\x02\xc3\x28", 4) /* created_by not UTF-8 */}) {
    const auto got = DecodeSignedBundle(garbage);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  }
  // Empty input is a valid (empty) message; it still fails verification.
  const auto empty = DecodeSignedBundle("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(VerifyBundle(*empty, TrustedKeys(), 0).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(DecodeSignedBundleTest, OversizedInputIsRefusedBeforeParsing) {
  const std::string big(kMaxSignedBundleBytes + 1, '\0');
  EXPECT_EQ(DecodeSignedBundle(big).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace warden::policy::bundle
