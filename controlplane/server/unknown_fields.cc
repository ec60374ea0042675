#include "controlplane/server/unknown_fields.h"

#include <memory>
#include <vector>

#include "absl/base/const_init.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"

namespace warden::controlplane::server {

namespace {

using Fields = std::vector<const google::protobuf::FieldDescriptor*>;

// The message-typed fields of `descriptor`, listed once per type.
const Fields& MessageFields(const google::protobuf::Descriptor* descriptor) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* const by_type =
      new absl::flat_hash_map<const google::protobuf::Descriptor*,
                              std::unique_ptr<const Fields>>();
  {
    absl::ReaderMutexLock lock(&mu);
    auto it = by_type->find(descriptor);
    if (it != by_type->end()) return *it->second;
  }
  auto fields = std::make_unique<Fields>();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->cpp_type() ==
        google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      fields->push_back(field);
    }
  }
  absl::MutexLock lock(&mu);
  auto& slot = (*by_type)[descriptor];
  if (slot == nullptr) slot = std::move(fields);
  return *slot;
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
