#include "controlplane/server/unknown_fields.h"

#include <vector>

#include "absl/container/flat_hash_map.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"

namespace warden::controlplane::server {

namespace {

using Fields = std::vector<const google::protobuf::FieldDescriptor*>;

// The message-typed fields of `descriptor`, listed once per type and
// thread (no lock on the way of every event).
const Fields& MessageFields(const google::protobuf::Descriptor* descriptor) {
  thread_local absl::flat_hash_map<const google::protobuf::Descriptor*, Fields>
      by_type;
  auto [it, inserted] = by_type.try_emplace(descriptor);
  if (inserted) {
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const google::protobuf::FieldDescriptor* field = descriptor->field(i);
      if (field->cpp_type() ==
          google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
        it->second.push_back(field);
      }
    }
  }
  return it->second;
}

}  // namespace

bool HasUnknownFields(const google::protobuf::Message& message) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  if (!reflection->GetUnknownFields(message).empty()) return true;
  for (const google::protobuf::FieldDescriptor* field :
       MessageFields(message.GetDescriptor())) {
    if (field->is_repeated()) {
      const int n = reflection->FieldSize(message, field);
      for (int k = 0; k < n; ++k) {
        if (HasUnknownFields(reflection->GetRepeatedMessage(message, field, k))) {
          return true;
        }
      }
    } else if (reflection->HasField(message, field) &&
               HasUnknownFields(reflection->GetMessage(message, field))) {
      return true;
    }
  }
  return false;
}

}  // namespace warden::controlplane::server
