#include "common/warden_token.h"

#include <string>

#include "gtest/gtest.h"

namespace warden {
namespace {

TEST(WardenTokenTest, FormatAndParseRoundTrip) {
  const std::string secret(64, 'b');
  const std::string text = FormatWardenToken("tok_0123456789abcdef", secret);
  EXPECT_EQ(text, "wdn_0123456789abcdef_" + secret);
  auto parsed = ParseWardenToken(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->id, "tok_0123456789abcdef");
  EXPECT_EQ(parsed->secret, secret);
  EXPECT_EQ(WardenTokenSecretHash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(WardenTokenTest, MalformedTextIsRefused) {
  const std::string good = "wdn_0123456789abcdef_" + std::string(64, 'b');
  for (const std::string& bad :
       {std::string(""), good.substr(1), good + "0",
        "xyz_0123456789abcdef_" + std::string(64, 'b'),
        "wdn_0123456789ABCDEF_" + std::string(64, 'b'),
        "wdn_0123456789abcdef-" + std::string(64, 'b'),
        "wdn_0123456789abcdef_" + std::string(63, 'b') + "g"}) {
    auto parsed = ParseWardenToken(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().message(),
              "malformed token (expected wdn_<16 hex>_<64 hex>)");
  }
}

}  // namespace
}  // namespace warden
