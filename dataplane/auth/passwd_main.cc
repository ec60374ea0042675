// warden-passwd: reads a password from stdin and prints its SCRAM-SHA-256
// verifier ("SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>") on stdout,
// for operators writing the proxy config.
//
//   echo -n secret | warden-passwd [--iterations=N]
//
// One trailing "\n" (or "\r\n") on stdin is stripped, so `echo secret` works
// too. Exit status: 0 on success, 1 on empty password, 2 on usage errors.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "dataplane/auth/scram.h"

int main(int argc, char** argv) {
  int iterations = warden::dataplane::auth::kScramDefaultIterations;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--iterations=") &&
        absl::SimpleAtoi(arg, &iterations)) {
      continue;
    }
    std::fprintf(stderr,
                 "usage: echo -n PASSWORD | %s [--iterations=N]\n"
                 "Prints the SCRAM-SHA-256 verifier of the password read "
                 "from stdin.\n",
                 argv[0]);
    return 2;
  }
  std::string password((std::istreambuf_iterator<char>(std::cin)),
                       std::istreambuf_iterator<char>());
  if (absl::EndsWith(password, "\n")) {
    password.pop_back();
    if (absl::EndsWith(password, "\r")) password.pop_back();
  }
  if (password.empty()) {
    std::fprintf(stderr, "%s: empty password on stdin\n", argv[0]);
    return 1;
  }
  absl::StatusOr<warden::dataplane::auth::ScramVerifier> verifier =
      warden::dataplane::auth::MakeScramVerifierRandomSalt(password, iterations);
  if (!verifier.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[0],
                 std::string(verifier.status().message()).c_str());
    return 2;
  }
  std::printf("%s\n", warden::dataplane::auth::FormatScramVerifier(*verifier).c_str());
  return 0;
}
