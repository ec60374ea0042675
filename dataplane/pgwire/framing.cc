#include "dataplane/pgwire/framing.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "dataplane/pgwire/reader.h"

namespace warden::dataplane::pgwire {
namespace {

Frame ErrorFrame(char type, std::string message) {
  Frame frame;
  frame.status = FrameStatus::kError;
  frame.type = type;
  frame.error = absl::InvalidArgumentError(std::move(message));
  return frame;
}

}  // namespace

Frame NextMessage(absl::string_view buf, size_t max_size) {
  Frame frame;
  if (buf.size() < 5) return frame;  // kNeedMore, size unknown
  frame.type = buf[0];
  const int32_t declared = internal::LoadInt32(buf.data() + 1);
  if (declared < 4) {
    return ErrorFrame(frame.type, absl::StrCat("message of type ",
                                               DescribeTypeByte(frame.type),
                                               " declares length ", declared,
                                               ", below the minimum of 4"));
  }
  const size_t total = static_cast<size_t>(declared) + 1;
  if (total > max_size) {
    return ErrorFrame(
        frame.type,
        absl::StrCat("message of type ", DescribeTypeByte(frame.type),
                     " declares ", declared, " bytes, over the ", max_size,
                     "-byte limit"));
  }
  frame.size = total;
  if (buf.size() < total) return frame;  // kNeedMore, size known
  frame.status = FrameStatus::kMessage;
  frame.body = buf.substr(5, total - 5);
  return frame;
}

Frame NextStartupPacket(absl::string_view buf, size_t max_size) {
  Frame frame;
  if (buf.size() < 4) return frame;
  const int32_t declared = internal::LoadInt32(buf.data());
  if (declared < 8) {
    return ErrorFrame(0, absl::StrCat("startup packet declares length ",
                                      declared, ", below the minimum of 8"));
  }
  const size_t total = static_cast<size_t>(declared);
  if (total > max_size) {
    return ErrorFrame(
        0, absl::StrCat("startup packet declares ", declared,
                        " bytes, over the ", max_size, "-byte limit"));
  }
  frame.size = total;
  if (buf.size() < total) return frame;
  frame.status = FrameStatus::kMessage;
  frame.body = buf.substr(4, total - 4);
  return frame;
}

}  // namespace warden::dataplane::pgwire
