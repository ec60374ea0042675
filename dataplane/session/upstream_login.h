// UpstreamLogin: Warden logging in to the database with the service
// credentials (or the role an identity mapping picked), as a state machine
// with no I/O: each backend message of the startup exchange in, the reply
// to send (or the refusal) out.
//
// It answers exactly the configured method. Any other request (cleartext
// when SCRAM is configured, md5 when cleartext is) is refused, so the
// service password cannot be downgraded or harvested; with SCRAM the server
// must also prove it knows the password (its final signature), and a
// server that lets Warden in without SCRAM when SCRAM is configured is
// refused as not being the database (tests/security/
// test_upstream_login_attacks.py plays each with a fake upstream).
#ifndef WARDEN_DATAPLANE_SESSION_UPSTREAM_LOGIN_H_
#define WARDEN_DATAPLANE_SESSION_UPSTREAM_LOGIN_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/config/config.h"

namespace warden::dataplane::auth {
class ScramClient;
}

namespace warden::dataplane::session {

class UpstreamLogin {
 public:
  // `database`: the client's name for it, for messages.
  UpstreamLogin(const config::Upstream& upstream, std::string user,
                std::string password, std::string database);
  ~UpstreamLogin();

  struct Step {
    enum class State {
      kContinue,  // send `reply` (may be empty) and wait for more
      kDone,      // AuthenticationOk, accepted: the relay starts
      kFailed,    // end the session with `sqlstate` / `message`
    };
    State state = State::kContinue;
    std::string reply;
    std::string sqlstate;
    std::string message;
  };
  // One backend message of the startup exchange (type and body).
  Step OnMessage(char type, absl::string_view body);

 private:
  Step Refuse(const std::string& why) const;

  const config::Upstream& upstream_;
  const std::string user_;
  const std::string password_;
  const std::string database_;
  std::unique_ptr<auth::ScramClient> scram_;
  bool scram_done_ = false;  // the server's signature verified
};

}  // namespace warden::dataplane::session

#endif  // WARDEN_DATAPLANE_SESSION_UPSTREAM_LOGIN_H_
