// Message framing for the PostgreSQL v3 protocol: finds message boundaries in
// a byte buffer without copying and without doing any I/O.
//
// Contract:
//  * The returned Frame's `body` is a view into the caller's `buf`; it is
//    valid only while that buffer is alive and unmodified.
//  * A declared length that can never be valid (below the protocol minimum or
//    over `max_size`) is reported as kError as soon as the length field has
//    been read; the caller never waits for (or buffers) an oversize message.
//  * kError is terminal for the connection: the stream is out of sync and the
//    caller must fail closed (send an error and close), never pass through.
#ifndef WARDEN_DATAPLANE_PGWIRE_FRAMING_H_
#define WARDEN_DATAPLANE_PGWIRE_FRAMING_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "dataplane/pgwire/types.h"

namespace warden::dataplane::pgwire {

enum class FrameStatus { kNeedMore, kMessage, kError };

struct Frame {
  FrameStatus status = FrameStatus::kNeedMore;
  // Message type byte; 0 for startup-phase packets.
  char type = 0;
  // Payload after the 4-byte length (excludes type and length).
  absl::string_view body;
  // kMessage: bytes consumed from the buffer for this message
  // (type + length + body). kNeedMore: total bytes the complete message needs
  // if the length has been read, else 0.
  size_t size = 0;
  // InvalidArgumentError when status == kError, OK otherwise.
  absl::Status error;
};

// Frames one typed message starting at buf[0] (a type byte).
// `max_size` bounds the whole message (type byte + length + body).
// Errors: declared length < 4; length + 1 > max_size, e.g.
//   "message of type 'Q' declares 2147483647 bytes, over the
//    67108864-byte limit".
// The type byte itself is not checked here; use ValidateFrontend/Backend.
Frame NextMessage(absl::string_view buf, size_t max_size);

// Frames one startup-phase packet (no type byte: int32 length including
// itself, then the body). Errors: length < 8, length > max_size.
Frame NextStartupPacket(absl::string_view buf,
                        size_t max_size = kMaxStartupPacketSize);

}  // namespace warden::dataplane::pgwire

#endif  // WARDEN_DATAPLANE_PGWIRE_FRAMING_H_
