// Whether a decoded message carries fields this build does not know, at
// any depth: what ingest checks for every event before it drops them
// (google::protobuf::Message::DiscardUnknownFields walks every field of
// every nested message through reflection, about a microsecond for a
// statement event; this looks only at the message fields that are set).
#ifndef WARDEN_CONTROLPLANE_SERVER_UNKNOWN_FIELDS_H_
#define WARDEN_CONTROLPLANE_SERVER_UNKNOWN_FIELDS_H_

#include "google/protobuf/message.h"

namespace warden::controlplane::server {

// True if `message`, or a message in any of its set message fields
// (singular, repeated, map values), holds unknown fields.
bool HasUnknownFields(const google::protobuf::Message& message);

}  // namespace warden::controlplane::server

#endif  // WARDEN_CONTROLPLANE_SERVER_UNKNOWN_FIELDS_H_
