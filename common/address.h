// Whether a "host:port" names this machine. Used to allow plaintext (no
// TLS) only where bearer tokens and bundles never leave the host.
#ifndef WARDEN_COMMON_ADDRESS_H_
#define WARDEN_COMMON_ADDRESS_H_

#include <string>

namespace warden {

// True for 127.0.0.0/8, [::1] and localhost, with or without a port
// ("127.0.0.1:7443", "[::1]:7443", "localhost:7443"); false for any other
// name, including ones that merely start with "127.".
bool IsLoopbackAddress(const std::string& address);

}  // namespace warden

#endif  // WARDEN_COMMON_ADDRESS_H_
