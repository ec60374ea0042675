#include "common/log.h"

#include "gtest/gtest.h"

namespace warden::log {
namespace {

TEST(EscapeControlsTest, PrintableTextStays) {
  EXPECT_EQ(EscapeControls("alice@example.com SELECT 'x' \\n"),
            "alice@example.com SELECT 'x' \\n");
  EXPECT_EQ(EscapeControls("Zo\xC3\xAB \xE6\x97\xA5 \xF0\x9F\x98\x80"),
            "Zo\xC3\xAB \xE6\x97\xA5 \xF0\x9F\x98\x80");
}

TEST(EscapeControlsTest, ControlsCannotForgeLines) {
  EXPECT_EQ(EscapeControls("x\n2026 info forged\r\x1b[2J\t"),
            "x\\x0a2026 info forged\\x0d\\x1b[2J\\t");
  EXPECT_EQ(EscapeControls("a\x7f"), "a\\x7f");
  // C1 controls (NEL, CSI, OSC) and the line and paragraph separators.
  EXPECT_EQ(EscapeControls("a\xC2\x85" "b\xC2\x9B" "31m\xC2\x9D" "0"),
            "a\\u0085b\\u009b31m\\u009d0");
  EXPECT_EQ(EscapeControls("a\xE2\x80\xA8" "b\xE2\x80\xA9"), "a\\u2028b\\u2029");
}

TEST(EscapeControlsTest, BytesThatAreNotUtf8AreEscapedOneByOne) {
  EXPECT_EQ(EscapeControls("raw\xFF\x9B"), "raw\\xff\\x9b");
  EXPECT_EQ(EscapeControls("\xC0\x8A"), "\\xc0\\x8a");            // overlong '\n'
  EXPECT_EQ(EscapeControls("\xED\xA0\x80"), "\\xed\\xa0\\x80");    // surrogate
  EXPECT_EQ(EscapeControls("\xE6\x97"), "\\xe6\\x97");              // cut short
  EXPECT_EQ(EscapeControls("\xF4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
}

}  // namespace
}  // namespace warden::log
