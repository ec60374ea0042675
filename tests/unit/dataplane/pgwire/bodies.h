// Message bodies (type byte and length cut off, as framing hands them on)
// built with the encoder, for tests of what sits behind the codec (the
// correlator, the stages, the upstream login). Parser tests use
// pgwire_test_util.h instead, which does not trust the encoder.
#ifndef WARDEN_TESTS_UNIT_DATAPLANE_PGWIRE_BODIES_H_
#define WARDEN_TESTS_UNIT_DATAPLANE_PGWIRE_BODIES_H_

#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/pgwire/encoder.h"

namespace warden::dataplane::pgwire::testing {

// The body of one encoded message.
inline std::string Body(const std::string& message) {
  return message.substr(5);
}

inline std::string QueryBody(absl::string_view sql) {
  std::string m;
  WriteQuery(&m, sql);
  return Body(m);
}
inline std::string ParseBody(absl::string_view name, absl::string_view sql) {
  std::string m;
  WriteParse(&m, name, sql);
  return Body(m);
}
inline std::string BindBody(absl::string_view portal,
                            absl::string_view statement) {
  std::string m;
  WriteBind(&m, portal, statement);
  return Body(m);
}
inline std::string ExecuteBody(absl::string_view portal) {
  std::string m;
  WriteExecute(&m, portal);
  return Body(m);
}
inline std::string DescribeBody(char kind, absl::string_view name) {
  std::string m;
  WriteDescribe(&m, kind, name);
  return Body(m);
}
inline std::string CloseBody(char kind, absl::string_view name) {
  std::string m;
  WriteClose(&m, kind, name);
  return Body(m);
}

}  // namespace warden::dataplane::pgwire::testing

#endif  // WARDEN_TESTS_UNIT_DATAPLANE_PGWIRE_BODIES_H_
