#include "dataplane/audit/crc32.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace warden::dataplane::audit {
namespace {

// The spool's framing is zlib's CRC-32: the folded computation must give
// zlib's value for every length (below 64 bytes, at 64, between multiples
// of 16, long) and alignment, or records written by one build would not
// read in another.
TEST(Crc32Test, EqualsZlibForEveryLengthAndAlignment) {
  std::mt19937 random(16);
  for (size_t length = 0; length < 1500; ++length) {
    for (size_t offset = 0; offset < 4; ++offset) {
      std::string data(offset + length, '\0');
      for (char& c : data) c = static_cast<char>(random());
      ASSERT_EQ(Crc32(data.data() + offset, length),
                Crc32Zlib(data.data() + offset, length))
          << "length " << length << ", offset " << offset;
    }
  }
  const std::string large(1 << 20, 'w');
  EXPECT_EQ(Crc32(large.data(), large.size()),
            Crc32Zlib(large.data(), large.size()));
}

TEST(Crc32Test, KnownValues) {
  EXPECT_EQ(Crc32("", 0), 0u);
  EXPECT_EQ(Crc32("123456789", 9), 0xcbf43926u);
  const std::string zeros(64, '\0');
  EXPECT_EQ(Crc32(zeros.data(), zeros.size()), 0x758d6336u);
}

}  // namespace
}  // namespace warden::dataplane::audit
