#include "common/crypto.h"

#include "gtest/gtest.h"

namespace warden::crypto {
namespace {

TEST(CryptoTest, Sha256MatchesFips180Vector) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
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

}  // namespace
}  // namespace warden::crypto
