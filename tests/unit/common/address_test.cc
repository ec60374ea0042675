#include "common/address.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace warden {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(SplitAddressListTest, CommasBlanksAndEmptyItems) {
  EXPECT_THAT(SplitAddressList("a:1"), ElementsAre("a:1"));
  EXPECT_THAT(SplitAddressList(" a:1 , b:2,,c:3 "),
              ElementsAre("a:1", "b:2", "c:3"));
  EXPECT_THAT(SplitAddressList(" , "), IsEmpty());
}

TEST(AddressRingTest, MovesOnOnlyFromTheCurrentAddress) {
  AddressRing ring("a:1,b:2,c:3");
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.Current(), "a:1");
  EXPECT_EQ(ring.Failed("a:1"), "b:2");
  // A second caller that saw a:1 fail too does not skip b:2.
  EXPECT_EQ(ring.Failed("a:1"), "b:2");
  EXPECT_EQ(ring.Failed("b:2"), "c:3");
  EXPECT_EQ(ring.Failed("c:3"), "a:1");  // round again
}

TEST(AddressRingTest, OneAddressStays) {
  AddressRing ring("only:1");
  EXPECT_EQ(ring.Failed("only:1"), "only:1");
  EXPECT_EQ(ring.Current(), "only:1");
}

TEST(AddressRingTest, ManyCallersReportingOneFailureMoveOnce) {
  AddressRing ring("a:1,b:2,c:3");
  std::vector<std::thread> callers;
  for (int i = 0; i < 8; ++i) {
    callers.emplace_back([&ring] { ring.Failed("a:1"); });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(ring.Current(), "b:2");
}

}  // namespace
}  // namespace warden
