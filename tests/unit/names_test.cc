#include "common/names.h"

#include "gtest/gtest.h"

namespace warden {
namespace {

TEST(FoldNameTest, AsciiIsLowerCase) {
  EXPECT_EQ(FoldName("Alice@Example.COM"), "alice@example.com");
  EXPECT_EQ(FoldName(""), "");
}

TEST(FoldNameTest, NonAsciiCapitalsFoldLikeAscii) {
  // The red team's names: a deactivation typed in capitals must reach the
  // lower-case spelling a token carries.
  EXPECT_EQ(FoldName("ÅSA@EXAMPLE.COM"), "åsa@example.com");
  EXPECT_EQ(FoldName("ÉLODIE@example.com"), FoldName("élodie@example.com"));
  EXPECT_EQ(FoldName("ÖRJAN@example.com"), FoldName("örjan@example.com"));
  EXPECT_EQ(FoldName("STRASSE"), FoldName("straße"));  // full folding
  EXPECT_EQ(FoldName("ΣΊΣΥΦΟΣ"), FoldName("σίσυφος"));  // final sigma
}

TEST(FoldNameTest, CanonicallyEquivalentSpellingsFoldAlike) {
  // Precomposed and decomposed: the same text to a reader and to Unicode.
  EXPECT_EQ(FoldName("\xC3\xA5sa"), FoldName("a\xCC\x8Asa"));
  EXPECT_EQ(FoldName("\xC3\x85SA"), FoldName("a\xCC\x8Asa"));
  // KELVIN SIGN is canonically K.
  EXPECT_EQ(FoldName("\xE2\x84\xAAim"), "kim");
}

TEST(FoldNameTest, DistinctNamesStayDistinct) {
  EXPECT_NE(FoldName("alice"), FoldName("alicé"));
  EXPECT_NE(FoldName("asa"), FoldName("åsa"));
  // Compatibility forms are not merged: fullwidth a is not a.
  EXPECT_NE(FoldName("\xEF\xBD\x81lice"), "alice");
  // Dotless i is not i.
  EXPECT_NE(FoldName("al\xC4\xB1" "ce"), "alice");
}

TEST(FoldNameTest, InvalidUtf8IsLoweredByteForByte) {
  EXPECT_EQ(FoldName("AB\xFF"), "ab\xFF");
  EXPECT_NE(FoldName("a\xFF"), FoldName("a\xFE"));
}

TEST(FoldNameTest, SameName) {
  EXPECT_TRUE(SameName("ÅSA", "åsa"));
  EXPECT_FALSE(SameName("asa", "åsa"));
}

}  // namespace
}  // namespace warden
