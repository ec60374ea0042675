#include "common/crypto.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace warden::crypto {
namespace {

TEST(CryptoTest, Sha256MatchesFips180Vector) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(CryptoTest, Sha256ConcatHashesTheConcatenation) {
  EXPECT_EQ(Sha256Concat({"a", "bc"}), Sha256("abc"));
  EXPECT_EQ(Sha256Concat({"", "abc", ""}), Sha256("abc"));
  EXPECT_EQ(Sha256Concat({}), Sha256(""));
  EXPECT_EQ(HexEncode(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // FIPS 180-2 two-block vector, split mid-block.
  EXPECT_EQ(HexEncode(Sha256Concat(
                {"abcdbcdecdefdefgefghfghighij", "hijkijkljklmklmnlmnomnopnopq"})),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // Binary bytes, and a part larger than SHA-256's block.
  const std::string big(1000, '\0');
  EXPECT_EQ(Sha256Concat({absl::string_view("\x00", 1), big}),
            Sha256(std::string(1, '\0') + big));
}

TEST(CryptoTest, Sha256IsTheSameFromManyThreads) {
  // Each thread keeps its own context: none sees another's state.
  const std::string want = Sha256("warden");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (Sha256Concat({"war", "den"}) != want) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(CryptoTest, HmacSha256MatchesRfc4231Case2) {
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoTest, Base64RoundTripAndRejectsGarbage) {
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  auto decoded = Base64Decode("aGVsbG8=");
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, "hello");
  EXPECT_FALSE(Base64Decode("a$b=").ok());
  EXPECT_FALSE(Base64Decode("abc").ok());
}

TEST(CryptoTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
}

TEST(CryptoTest, RandomBytesHaveRequestedLengthAndDiffer) {
  auto a = RandomBytes(16), b = RandomBytes(16);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 16u);
  EXPECT_NE(*a, *b);
}

// Helpers for the Ed25519 tests.
std::string Unhex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

TEST(Ed25519Test, SignVerifyRoundTrip) {
  auto pair = GenerateEd25519Key();
  ASSERT_TRUE(pair.ok()) << pair.status();
  EXPECT_NE(pair->private_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_NE(pair->public_pem.find("BEGIN PUBLIC KEY"), std::string::npos);
  auto sig = Ed25519Sign(pair->private_pem, "bundle bytes");
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->size(), 64u);
  EXPECT_TRUE(Ed25519Verify(pair->public_pem, "bundle bytes", *sig).ok());
  auto derived = Ed25519PublicKeyFromPrivate(pair->private_pem);
  ASSERT_TRUE(derived.ok());
  EXPECT_EQ(*derived, pair->public_pem);
}

TEST(Ed25519Test, TamperedMessageIsPermissionDenied) {
  auto pair = GenerateEd25519Key();
  ASSERT_TRUE(pair.ok());
  auto sig = Ed25519Sign(pair->private_pem, "revision 7");
  ASSERT_TRUE(sig.ok());
  const absl::Status s = Ed25519Verify(pair->public_pem, "revision 8", *sig);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
}

TEST(Ed25519Test, TamperedSignatureIsPermissionDenied) {
  auto pair = GenerateEd25519Key();
  ASSERT_TRUE(pair.ok());
  auto sig = Ed25519Sign(pair->private_pem, "m");
  ASSERT_TRUE(sig.ok());
  std::string flipped = *sig;
  flipped[10] ^= 0x01;
  EXPECT_EQ(Ed25519Verify(pair->public_pem, "m", flipped).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Ed25519Verify(pair->public_pem, "m", sig->substr(0, 63)).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Ed25519Verify(pair->public_pem, "m", "").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(Ed25519Test, WrongKeyIsPermissionDenied) {
  auto signer = GenerateEd25519Key(), other = GenerateEd25519Key();
  ASSERT_TRUE(signer.ok() && other.ok());
  auto sig = Ed25519Sign(signer->private_pem, "m");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(Ed25519Verify(other->public_pem, "m", *sig).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(Ed25519Test, MalformedKeysAreInvalidArgument) {
  auto pair = GenerateEd25519Key();
  ASSERT_TRUE(pair.ok());
  auto sig = Ed25519Sign(pair->private_pem, "m");
  ASSERT_TRUE(sig.ok());
  std::string truncated = pair->public_pem.substr(0, 40);
  for (const std::string& bad :
       {std::string(), std::string("not a key"), truncated}) {
    EXPECT_EQ(Ed25519Verify(bad, "m", *sig).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Ed25519Sign(bad, "m").status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Ed25519KeyId(bad).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  // A public key where a private one is expected, and the reverse.
  EXPECT_EQ(Ed25519Sign(pair->public_pem, "m").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ed25519Verify(pair->private_pem, "m", *sig).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ed25519PrivateKeyFromRaw("short").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Ed25519Test, KeyIdIsShortHexOfRawPublicKeyHash) {
  auto pair = GenerateEd25519Key();
  ASSERT_TRUE(pair.ok());
  auto id = Ed25519KeyId(pair->public_pem);
  auto raw = Ed25519RawPublicKey(pair->public_pem);
  ASSERT_TRUE(id.ok() && raw.ok());
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_EQ(*id, HexEncode(Sha256(*raw)).substr(0, 16));
  auto other = GenerateEd25519Key();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*Ed25519KeyId(other->public_pem), *id);
}

// RFC 8032 section 7.1, TEST 1: empty message.
TEST(Ed25519Test, MatchesRfc8032TestVector1) {
  auto priv = Ed25519PrivateKeyFromRaw(Unhex(
      "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
  ASSERT_TRUE(priv.ok()) << priv.status();
  auto pub = Ed25519PublicKeyFromPrivate(*priv);
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(HexEncode(*Ed25519RawPublicKey(*pub)),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig = Ed25519Sign(*priv, "");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(HexEncode(*sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
            "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(Ed25519Verify(*pub, "", *sig).ok());
}

TEST(Ed25519Test, ASignerSignsAsEd25519SignDoes) {
  // RFC 8032 section 7.1, TEST 2 (one-byte message).
  auto priv = Ed25519PrivateKeyFromRaw(Unhex(
      "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"));
  ASSERT_TRUE(priv.ok());
  auto signer = Ed25519Signer::FromPem(*priv);
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ(HexEncode(signer->raw_public_key()),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
  auto sig = signer->Sign(Unhex("72"));
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(HexEncode(*sig),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
            "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
  EXPECT_EQ(*sig, *Ed25519Sign(*priv, Unhex("72")));
  // Copies share the key, from any thread.
  const Ed25519Signer copy = *signer;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (*copy.Sign(Unhex("72")) != *sig) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  auto pair = GenerateEd25519Key();
  ASSERT_TRUE(pair.ok());
  EXPECT_EQ(Ed25519Signer::FromPem(pair->public_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ed25519Signer::FromPem("not a key").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Ed25519Signer().Sign("m").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(Ed25519Test, PublicKeyFromRawRoundTrips) {
  auto pair = GenerateEd25519Key();
  ASSERT_TRUE(pair.ok());
  auto raw = Ed25519RawPublicKey(pair->public_pem);
  ASSERT_TRUE(raw.ok());
  auto pem = Ed25519PublicKeyFromRaw(*raw);
  ASSERT_TRUE(pem.ok()) << pem.status();
  EXPECT_EQ(*pem, pair->public_pem);
  auto sig = Ed25519Sign(pair->private_pem, "m");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(Ed25519Verify(*pem, "m", *sig).ok());
  EXPECT_EQ(Ed25519PublicKeyFromRaw("short").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace warden::crypto
