// Times and durations between Abseil and protobuf's well-known types, in
// one place (nanosecond precision; a time floors to its second, a duration
// keeps the sign of its seconds in its nanos, as protobuf requires).
#ifndef WARDEN_COMMON_PROTO_TIME_H_
#define WARDEN_COMMON_PROTO_TIME_H_

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace warden {

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
google::protobuf::Timestamp ToTimestamp(absl::Time t);
absl::Time FromTimestamp(const google::protobuf::Timestamp& ts);

void SetDuration(absl::Duration d, google::protobuf::Duration* out);
absl::Duration FromDuration(const google::protobuf::Duration& d);

}  // namespace warden

#endif  // WARDEN_COMMON_PROTO_TIME_H_
