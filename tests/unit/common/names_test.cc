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

TEST(CheckNameIsDistinctTest, OrdinaryNamesPass) {
  for (const char* name :
       {"alice", "Alice.Smith+ci@example.com", "o'brien", "Jos\xC3\xA9",
        "a\xCC\x8Asa",                                 // decomposed å
        "\xCE\x95\xCE\xBB\xCE\xAD\xCE\xBD\xCE\xB7",  // Ελένη
        "\xE7\x94\xB0\xE4\xB8\xADtaro",             // 田中taro
        "\xE3\x81\x95\xE3\x81\x8F\xE3\x82\x89 \xE3\x82\xAB",  // さくら カ
        "\xD0\xB8\xD0\xB2\xD0\xB0\xD0\xBD@example.ru",  // иван@
        "svc-etl_01", "Mary Ann",
        "Nguy\xE1\xBB\x85n Th\xE1\xBB\x8B",  // Nguyễn Thị
        "Team \xF0\x9F\x9A\x80"}) {  // an emoji in a group's name
    EXPECT_TRUE(CheckNameIsDistinct(name).ok())
        << name << ": " << CheckNameIsDistinct(name);
  }
}

TEST(CheckNameIsDistinctTest, LookAlikesAreRefused) {
  struct Case {
    const char* name;
    const char* why;
  };
  for (const Case& c : {
           Case{"\xD0\xB0lice", "Cyrillic"},          // Cyrillic а + Latin
           Case{"adm\xCE\xB9n", "Greek"},             // Greek iota
           Case{"ali\xE2\x80\x8B" "ce", "U+200B"},   // zero-width space
           Case{"alice\xE2\x80\xAE", "U+202E"},      // right-to-left override
           Case{"alice\xC2\xA0", "U+00A0"},           // no-break space
           Case{"ali\xC2\xAD" "ce", "U+00AD"},           // soft hyphen
           Case{"alice\xEF\xB8\x8F", "U+FE0F"},      // variation selector
           Case{"ali\nce", "U+000A"},
           Case{"\xEF\xBD\x81lice", "does not recommend"},  // fullwidth a
           Case{"\xF0\x9D\x90\x9Alice", "does not recommend"},  // bold a
           Case{"o\xEF\xAC\x81" "ce", "does not recommend"},  // ﬁ ligature
           // Latin look-alikes of Latin letters (red team pass 6).
           Case{"\xC9\x91lice", "U+0251"},                    // ɑ
           Case{"a\xCA\x9F" "ice", "U+029F"},                 // small-cap L
           Case{"al\xC9\xA9" "ce", "U+0269"},                 // ɩ
           Case{"mary\xE2\x80\x90jane", "U+2010"},           // hyphen
           Case{"alice\xFF", "UTF-8"},
           Case{"\xD0\xB8\xD0\xB2\xD0\xB0n@example.ru", "Cyrillic"},
           Case{"ivan@ex\xD0\xB0mple.com", "Cyrillic"},
           Case{"joe@example\xC2\xB7" "com", "U+00B7"},  // middle dot
           Case{"dave@example.com ", "ends with a space"},
           Case{" dave@example.com", "begins or ends with a space"},
           Case{"da  ve@example.com", "two spaces in a row"},
           Case{"dave@example.com.", "ends with a dot"},
           Case{".dave@example.com", "begins or ends with a dot"},
           Case{"dave..x@example.com", "two dots in a row"},
           Case{"i\xCC\x87lker", "U+0307"},  // dot above on i
           // ... with a below-mark between, or on a precomposed ị (pass 9)
           Case{"li\xCC\xA3\xCC\x87na", "U+0307"},
           Case{"l\xE1\xBB\x8B\xCC\x87na", "U+0307"},
           Case{"dave@example.\xCC\x80", "ends with a dot"},
       }) {
    const absl::Status s = CheckNameIsDistinct(c.name);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(s.message().find(c.why), std::string::npos) << s.message();
  }
}

TEST(NamesLookAlikeTest, LookAlikesThatPassTheOneNameCheck) {
  // Each of these passes CheckNameIsDistinct on its own (one script,
  // recommended characters): only a comparison with the other name finds
  // them.
  struct Pair {
    const char* known;
    const char* impostor;
  };
  for (const Pair& p : {
           Pair{"ape", "\xD0\xB0\xD1\x80\xD0\xB5"},  // Cyrillic а р е
           Pair{"alice", "al\xC4\xB1" "ce"},        // dotless i
           Pair{"bob", "b0b"},
           Pair{"joe@example.com", "joe@examp1e.com"},
           Pair{"mary", "rnary"},
           Pair{"lan", "Ian"},                      // capital I for l
           Pair{"ALICE", "al\xC4\xB1" "ce"},        // whatever the case
           // Capitals: "B1LLY" and "EMlLY" read as BILLY and EMILY, which
           // are billy's and emily's names (red team pass 8).
           Pair{"billy@example.com", "B1LLY@example.com"},
           Pair{"emily", "EMlLY"},
           Pair{"alice", "AL1CE"},
           Pair{"alice", "aIice"},
           // Capitals and small letters mixed by part or capitalised
           // (red team pass 9): each reads as a way the name is written.
           Pair{"emily@c9.example", "EMlLY@c9.example"},
           Pair{"billy@c9.example", "BlLLY@c9.example"},
           Pair{"emily@c9.example", "EmiIy@c9.example"},
           Pair{"billy@c9.example", "BiIly@c9.example"},
           Pair{"will", "WiII"},
           Pair{"alice", "AIice"},
           Pair{"emily.smith@example.com", "EmiIy.Smith@example.com"},
           Pair{"emily.smith@example.com", "EMILY.SMlTH@EXAMPLE.COM"},
           // The price: names that differ in an i for an l where one
           // of them is written with capitals ("Ian", "AI@...").
           Pair{"ian", "lan"},
           Pair{"IAN", "LAN"},
           Pair{"ai@example.com", "al@example.com"},
       }) {
    ASSERT_TRUE(CheckNameIsDistinct(p.impostor).ok()) << p.impostor;
    EXPECT_TRUE(NamesLookAlike(p.known, p.impostor)) << p.impostor;
    EXPECT_TRUE(NamesLookAlike(p.impostor, p.known)) << p.impostor;
  }
}

TEST(NamesLookAlikeTest, TheSamePersonAndDifferentNamesDoNot) {
  EXPECT_FALSE(NamesLookAlike("alice", "Alice"));
  EXPECT_FALSE(NamesLookAlike("alice@example.com", "ALICE@EXAMPLE.COM"));
  EXPECT_FALSE(NamesLookAlike("alice", "alicia"));
  EXPECT_FALSE(NamesLookAlike("bob", "rob"));
  // A capital I reads as an l, not as an L, and case is not mixed
  // within a part of a name.
  EXPECT_FALSE(NamesLookAlike("kai", "kal"));
  EXPECT_FALSE(NamesLookAlike("kai@example.com", "kal@example.com"));
  EXPECT_FALSE(NamesLookAlike("emily", "emlly"));  // lower case only
  EXPECT_FALSE(NamesLookAlike("emily.smith@example.com",
                              "emily.smith@example.org"));
  EXPECT_FALSE(NamesLookAlike("jos\xC3\xA9", "jose"));  // é is not e
  EXPECT_FALSE(NamesLookAlike("\xD0\xB8\xD0\xB2\xD0\xB0\xD0\xBD", "ivan"));
}

// NameSkeletons skips ICU for ASCII names: the keys must be ICU's.
TEST(NameSkeletonsTest, TheAsciiShortcutGivesIcusKeys) {
  std::vector<std::string> texts = {"alice", "B1LLY@example.com",
                                    "EmiIy.Smith@Example.COM", "rn@m.rn",
                                    "a@b@c", "@x", "x@", "Mary Ann"};
  // Every pair of printable characters, then longer random names.
  for (char a = 0x20; a < 0x7f; ++a) {
    for (char b = 0x20; b < 0x7f; ++b) texts.push_back(std::string{a, b});
  }
  uint32_t seed = 12345;
  for (int n = 0; n < 2000; ++n) {
    std::string t;
    for (int i = 0; i < 12; ++i) {
      seed = seed * 1103515245 + 12345;
      t.push_back(static_cast<char>(0x20 + (seed >> 16) % 95));
    }
    texts.push_back(t);
  }
  for (const std::string& t : texts) {
    ASSERT_EQ(NameSkeletons(t), internal::NameSkeletonsWithIcu(t)) << t;
  }
}

TEST(LookAlikeIndexTest, FindsTheNameAnImpostorPassesFor) {
  LookAlikeIndex index;
  EXPECT_TRUE(index.empty());
  index.Add("alice@example.com");
  index.Add("Bob");
  EXPECT_FALSE(index.empty());
  EXPECT_EQ(index.Find("alice@examp1e.com"), "alice@example.com");
  EXPECT_EQ(index.Find("b0b"), "Bob");
  EXPECT_EQ(index.Find("bob"), "");  // Bob himself
  EXPECT_EQ(index.Find("carol"), "");
  // Two existing names that look alike were both let in: each is still
  // itself, and a third look-alike is named.
  index.Add("mary");
  index.Add("rnary");
  EXPECT_EQ(index.Find("mary"), "");
  EXPECT_EQ(index.Find("rnary"), "");
  EXPECT_NE(index.Find("m\xC9\x91ry"), "");  // ɑ (U+0251) for a
}

TEST(QuoteUnverifiedNameTest, QuotesDoublesQuotesAndCountsSpaceRuns) {
  EXPECT_EQ(QuoteUnverifiedName("alice"), "\"alice\"");
  EXPECT_EQ(QuoteUnverifiedName("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(QuoteUnverifiedName("Mary Ann"), "\"Mary Ann\"");
  EXPECT_EQ(QuoteUnverifiedName("x" + std::string(150, ' ') + "y"),
            "\"x<150 spaces>y\"");
  EXPECT_EQ(QuoteUnverifiedName(""), "\"\"");
}

}  // namespace
}  // namespace warden
