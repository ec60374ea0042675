// Byte-level builders for pgwire tests. Deliberately independent of
// dataplane/pgwire/encoder.h so parser tests do not trust the encoder.
#ifndef WARDEN_TESTS_UNIT_PGWIRE_TEST_UTIL_H_
#define WARDEN_TESTS_UNIT_PGWIRE_TEST_UTIL_H_

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace warden::dataplane::pgwire::testing {

// Parsers return views into their input: Keep() gives a temporary a home
// that lives until the test binary exits.
inline absl::string_view Keep(std::string s) {
  static auto* const store = new std::deque<std::string>();
  store->push_back(std::move(s));
  return store->back();
}

// Big-endian int32 / int16.
inline std::string I32(int64_t v) {
  const uint32_t u = static_cast<uint32_t>(v);
  std::string s(4, '\0');
  s[0] = static_cast<char>(u >> 24);
  s[1] = static_cast<char>(u >> 16);
  s[2] = static_cast<char>(u >> 8);
  s[3] = static_cast<char>(u);
  return s;
}
inline std::string I16(int32_t v) {
  const uint16_t u = static_cast<uint16_t>(v);
  std::string s(2, '\0');
  s[0] = static_cast<char>(u >> 8);
  s[1] = static_cast<char>(u);
  return s;
}
// NUL-terminated string.
inline std::string Cs(absl::string_view s) {
  std::string out(s);
  out.push_back('\0');
  return out;
}
inline std::string Byte(char c) { return std::string(1, c); }
// Typed message: type byte, int32 length (incl. itself), body.
inline std::string Msg(char type, absl::string_view body) {
  return std::string(1, type) + I32(static_cast<int64_t>(body.size()) + 4) +
         std::string(body);
}
// Startup-phase packet: int32 length (incl. itself), body.
inline std::string Packet(absl::string_view body) {
  return I32(static_cast<int64_t>(body.size()) + 4) + std::string(body);
}

}  // namespace warden::dataplane::pgwire::testing

#endif  // WARDEN_TESTS_UNIT_PGWIRE_TEST_UTIL_H_
