#include "common/audit_bounds.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/container/node_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/crypto.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/reflection.h"

namespace warden::audit_bounds {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Length of the valid UTF-8 sequence at the start of `s`, or 0.
size_t SequenceLength(absl::string_view s) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  const auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// The fields looked at by identity, resolved once (a name comparison per
// field and event was most of a small event's cost).
struct Fields {
  const FieldDescriptor* repairs;
  const FieldDescriptor* statement_text;
  const FieldDescriptor* text[3];
};

const Fields& Known() {
  static const Fields* fields = [] {
    auto* f = new Fields;
    const auto* event = warden::v1::AuditEvent::descriptor();
    const auto* st = warden::v1::Statement::descriptor();
    f->repairs = event->FindFieldByName("repairs");
    f->statement_text = st->FindFieldByName("text");
    f->text[0] = f->statement_text;
    f->text[1] = st->FindFieldByName("normalized_text");
    f->text[2] = st->FindFieldByName("text_bytes");
    return f;
  }();
  return *fields;
}

bool IsTextField(const FieldDescriptor* f) {
  const Fields& k = Known();
  return f == k.text[0] || f == k.text[1] || f == k.text[2];
}

std::string PathOf(const std::string& prefix, const FieldDescriptor* f) {
  return prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
}

struct Walker {
  Limits limits;
  std::vector<std::string> invalid;
  std::vector<std::string> cut;

  static void Note(std::vector<std::string>* list, const std::string& path) {
    if (std::find(list->begin(), list->end(), path) == list->end()) {
      list->push_back(path);
    }
  }

  // Repairs one string value; the path names its field.
  void Repair(const FieldDescriptor* f, const std::string& prefix,
              std::string* value, Message* owner) {
    const std::string path = PathOf(prefix, f);
    if (f->type() == FieldDescriptor::TYPE_STRING && !IsValidUtf8(*value)) {
      Note(&invalid, path);
      if (f == Known().statement_text) {
        // The exact bytes, for the record.
        auto* st = static_cast<warden::v1::Statement*>(owner);
        if (st->text_bytes().empty()) {
          st->set_text_bytes(value->substr(0, limits.max_text));
          if (value->size() > limits.max_text) Note(&cut, "statement.text_bytes");
        }
      }
      *value = MakeValidUtf8(*value);
    }
    const size_t cap = IsTextField(f) ? limits.max_text : limits.max_string;
    if (value->size() > cap) {
      Note(&cut, path);
      if (f->type() == FieldDescriptor::TYPE_STRING) {
        value->resize(Utf8Prefix(*value, cap).size());
      } else {
        value->resize(cap);
      }
    }
  }

  void Walk(Message* m, const std::string& prefix) {
    const Reflection* r = m->GetReflection();
    std::vector<const FieldDescriptor*> fields;
    r->ListFields(*m, &fields);
    for (const FieldDescriptor* f : fields) {
      if (f == Known().repairs) continue;
      const bool is_string = f->type() == FieldDescriptor::TYPE_STRING ||
                             f->type() == FieldDescriptor::TYPE_BYTES;
      const bool is_message = f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
      if (!is_string && !is_message) continue;
      if (f->is_repeated()) {
        const int n = r->FieldSize(*m, f);
        if (n > limits.max_repeated) {
          Note(&cut, PathOf(prefix, f));
          for (int i = n; i > limits.max_repeated; --i) r->RemoveLast(m, f);
        }
        const int kept = r->FieldSize(*m, f);
        for (int i = 0; i < kept; ++i) {
          if (is_message) {
            Walk(r->MutableRepeatedMessage(m, f, i), PathOf(prefix, f));
          } else {
            std::string scratch;
            const std::string& v = r->GetRepeatedStringReference(*m, f, i, &scratch);
            if (v.size() <= limits.max_string && (f->type() == FieldDescriptor::TYPE_BYTES ||
                                                  IsValidUtf8(v))) {
              continue;
            }
            std::string value = v;
            Repair(f, prefix, &value, m);
            r->SetRepeatedString(m, f, i, std::move(value));
          }
        }
      } else if (is_message) {
        Walk(r->MutableMessage(m, f), PathOf(prefix, f));
      } else {
        std::string scratch;
        const std::string& v = r->GetStringReference(*m, f, &scratch);
        const size_t cap = IsTextField(f) ? limits.max_text : limits.max_string;
        if (v.size() <= cap && (f->type() == FieldDescriptor::TYPE_BYTES ||
                                IsValidUtf8(v))) {
          continue;
        }
        std::string value = v;
        Repair(f, prefix, &value, m);
        r->SetString(m, f, std::move(value));
      }
    }
  }
};

// What the wire-format check needs of each field of a message type, by
// field number, resolved once per type: a descriptor lookup and several
// accessor calls per field and event were about half of the check.
struct WireField {
  enum class Kind : uint8_t { kUnknown, kOther, kString, kBytes, kMessage };
  Kind kind = Kind::kUnknown;  // kUnknown: no such field, or `repairs`
  bool repeated = false;
  bool text = false;  // IsTextField
  int index = 0;
  const struct WireType* message = nullptr;  // kMessage
};

struct WireType {
  const google::protobuf::Descriptor* descriptor = nullptr;
  int field_count = 0;
  std::vector<WireField> by_number;  // [number]; beyond: the descriptor
};

const WireType* WireTypeOf(const google::protobuf::Descriptor* d);

WireField Describe(const FieldDescriptor* f) {
  WireField w;
  if (f == nullptr || f == Known().repairs) return w;
  w.repeated = f->is_repeated();
  w.text = IsTextField(f);
  w.index = f->index();
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    w.kind = WireField::Kind::kMessage;
  } else if (f->type() == FieldDescriptor::TYPE_STRING) {
    w.kind = WireField::Kind::kString;
  } else if (f->type() == FieldDescriptor::TYPE_BYTES) {
    w.kind = WireField::Kind::kBytes;
  } else {
    w.kind = WireField::Kind::kOther;
  }
  return w;
}

// Field numbers above this are looked up in the descriptor instead (no
// audit message has any; a table that large would be mostly empty).
constexpr int kMaxTableNumber = 1024;

const WireType* WireTypeOf(const google::protobuf::Descriptor* d) {
  static const auto* types = [] {
    auto* all = new absl::node_hash_map<const google::protobuf::Descriptor*,
                                        WireType>();
    std::vector<const google::protobuf::Descriptor*> todo = {
        warden::v1::AuditEvent::descriptor()};
    while (!todo.empty()) {
      const google::protobuf::Descriptor* m = todo.back();
      todo.pop_back();
      if (all->contains(m)) continue;
      WireType& t = (*all)[m];
      t.descriptor = m;
      t.field_count = m->field_count();
      for (int i = 0; i < m->field_count(); ++i) {
        const FieldDescriptor* f = m->field(i);
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          todo.push_back(f->message_type());
        }
      }
    }
    // Now that every type has its (stable) entry, the fields.
    for (auto& [m, t] : *all) {
      int max_number = 0;
      for (int i = 0; i < m->field_count(); ++i) {
        max_number = std::max(max_number, m->field(i)->number());
      }
      t.by_number.resize(std::min(max_number, kMaxTableNumber) + 1);
      for (int i = 0; i < m->field_count(); ++i) {
        const FieldDescriptor* f = m->field(i);
        if (f->number() > kMaxTableNumber) continue;
        WireField& w = t.by_number[f->number()];
        w = Describe(f);
        if (w.kind == WireField::Kind::kMessage) {
          w.message = &all->at(f->message_type());
        }
      }
    }
    return all;
  }();
  const auto it = types->find(d);
  return it == types->end() ? nullptr : &it->second;
}

// The wire-format check behind EncodingWithinBounds.
class WireCheck {
 public:
  explicit WireCheck(const Limits& limits) : limits_(limits) {}

  bool Message(absl::string_view in, const WireType& d, int depth) {
    if (depth > 32) return false;
    // Occurrences of each repeated field, by field index.
    constexpr int kMaxFields = 64;
    if (d.field_count > kMaxFields) return false;
    int counts[kMaxFields] = {0};
    while (!in.empty()) {
      uint64_t tag = 0;
      if (!Varint(&in, &tag)) return false;
      const uint64_t number = tag >> 3;
      const int wire_type = static_cast<int>(tag & 7);
      WireField beyond;
      if (number >= d.by_number.size()) {  // kMaxTableNumber
        if (number > static_cast<uint64_t>(FieldDescriptor::kMaxNumber)) {
          return false;
        }
        const FieldDescriptor* fd =
            d.descriptor->FindFieldByNumber(static_cast<int>(number));
        beyond = Describe(fd);
        if (beyond.kind == WireField::Kind::kMessage) {
          beyond.message = WireTypeOf(fd->message_type());
        }
      }
      const WireField& f =
          number < d.by_number.size() ? d.by_number[number] : beyond;
      if (f.kind == WireField::Kind::kUnknown) return false;
      uint64_t skip = 0;
      switch (wire_type) {
        case 0:
          if (!Varint(&in, &skip)) return false;
          continue;
        case 1:
          skip = 8;
          break;
        case 5:
          skip = 4;
          break;
        case 2: {
          uint64_t length = 0;
          if (!Varint(&in, &length) || length > in.size()) return false;
          const absl::string_view value = in.substr(0, length);
          in.remove_prefix(length);
          const bool is_message = f.kind == WireField::Kind::kMessage;
          const bool is_string = f.kind == WireField::Kind::kString ||
                                 f.kind == WireField::Kind::kBytes;
          if (!is_message && !is_string) continue;  // packed scalars
          // A repeated field within its count; a message field once (two
          // would be merged, and their lists counted together).
          ++counts[f.index];
          if (f.repeated ? counts[f.index] > limits_.max_repeated
                         : is_message && counts[f.index] > 1) {
            return false;
          }
          if (is_message) {
            if (!Message(value, *f.message, depth + 1)) return false;
            continue;
          }
          const size_t cap = f.text ? limits_.max_text : limits_.max_string;
          if (value.size() > cap) return false;
          if (f.kind == WireField::Kind::kString && !IsValidUtf8(value)) {
            return false;
          }
          continue;
        }
        default:
          return false;  // groups, or not protobuf
      }
      if (skip > in.size()) return false;
      in.remove_prefix(skip);
    }
    return true;
  }

 private:
  static bool Varint(absl::string_view* in, uint64_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
      const uint8_t byte = static_cast<uint8_t>(in->front());
      in->remove_prefix(1);
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return true;
      }
    }
    return false;
  }

  const Limits& limits_;
};

}  // namespace

bool EncodingWithinBounds(absl::string_view encoded, const Limits& limits) {
  if (encoded.size() > limits.max_event) return false;
  static const WireType* const event =
      WireTypeOf(warden::v1::AuditEvent::descriptor());
  return WireCheck(limits).Message(encoded, *event, 0);
}

bool AppendBounded(warden::v1::AuditEvent* event, std::string* out,
                   const Limits& limits) {
  const size_t start = out->size();
  event->AppendToString(out);
  if (EncodingWithinBounds(absl::string_view(*out).substr(start), limits)) {
    return false;
  }
  out->resize(start);
  const bool changed = Bound(event, limits);
  event->AppendToString(out);
  return changed;
}

bool IsEventFieldPath(absl::string_view path) {
  if (path.empty()) return false;
  const google::protobuf::Descriptor* message =
      warden::v1::AuditEvent::descriptor();
  const FieldDescriptor* field = nullptr;
  for (absl::string_view part : absl::StrSplit(path, '.')) {
    if (message == nullptr) return false;  // a part after a scalar
    field = message->FindFieldByName(std::string(part));
    if (field == nullptr) return false;
    message = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE
                  ? field->message_type()
                  : nullptr;
  }
  return field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ||
         field->type() == FieldDescriptor::TYPE_STRING ||
         field->type() == FieldDescriptor::TYPE_BYTES;
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // ASCII runs are the common case: eight bytes at a time.
    uint64_t word;
    if (s.size() - i >= sizeof(word)) {
      std::memcpy(&word, s.data() + i, sizeof(word));
      if ((word & 0x8080808080808080ull) == 0) {
        i += sizeof(word);
        continue;
      }
    }
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = SequenceLength(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string MakeValidUtf8(absl::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = SequenceLength(s.substr(i));
    if (n == 0) {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

absl::string_view Utf8Prefix(absl::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  // Back up over continuation bytes to the start of the cut character.
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

bool Bound(warden::v1::AuditEvent* event, const Limits& limits) {
  // Below this size nothing can be over a limit; only UTF-8 can be wrong.
  const size_t smallest = std::min<size_t>(
      {limits.max_string, limits.max_text,
       2 * static_cast<size_t>(std::max(limits.max_repeated, 0))});
  const size_t size = event->ByteSizeLong();
  std::string original;
  if (size > smallest) original = event->SerializeAsString();

  Walker walker{limits, {}, {}};
  walker.Walk(event, "");
  if (event->ByteSizeLong() > limits.max_event) {
    Limits tight = limits;
    tight.max_string = std::min<size_t>(limits.max_string, 256);
    tight.max_text = std::min<size_t>(limits.max_text, limits.max_event / 4);
    tight.max_repeated = std::min(limits.max_repeated, 16);
    walker.limits = tight;
    walker.Walk(event, "");
  }
  if (!event->has_repairs() && walker.invalid.empty() && walker.cut.empty()) {
    return false;  // the common case: nothing to say, and no copy made
  }
  warden::v1::EventRepairs* repairs = event->mutable_repairs();
  if (repairs->undecodable().size() > limits.max_text) {
    repairs->mutable_undecodable()->resize(limits.max_text);
    Walker::Note(&walker.cut, "repairs.undecodable");
  }
  for (const auto& p : walker.invalid) repairs->add_invalid_utf8(p);
  for (const auto& p : walker.cut) repairs->add_truncated(p);
  if (!walker.cut.empty() && repairs->original_size() == 0) {
    repairs->set_original_size(size);
    repairs->set_original_sha256(crypto::Sha256(original));
  }
  const bool changed = !walker.invalid.empty() || !walker.cut.empty();
  if (!changed && repairs->ByteSizeLong() == 0) event->clear_repairs();
  return changed;
}

}  // namespace warden::audit_bounds
