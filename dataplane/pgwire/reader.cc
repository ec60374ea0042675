#include "dataplane/pgwire/reader.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace warden::dataplane::pgwire::internal {

std::string Quote(absl::string_view s) {
  constexpr size_t kMax = 64;
  if (s.size() <= kMax) return absl::CHexEscape(s);
  return absl::StrCat(absl::CHexEscape(s.substr(0, kMax)), "...");
}

std::string What::ToString() const {
  if (index == 0) return label;
  return absl::StrCat(label, " ", index);
}

absl::Status Reader::Error(absl::string_view detail) const {
  return absl::InvalidArgumentError(absl::StrCat(context_, ": ", detail));
}

absl::Status Reader::Truncated(What what, size_t need) const {
  return Error(absl::StrCat("truncated at ", what.ToString(), " (need ", need,
                            " bytes, ", remaining(), " remaining)"));
}

absl::StatusOr<uint32_t> Reader::ReadUint32(What what) {
  if (remaining() < 4) return Truncated(what, 4);
  const uint32_t v = LoadUint32(data_.data() + pos_);
  pos_ += 4;
  return v;
}

absl::StatusOr<int32_t> Reader::ReadInt32(What what) {
  if (remaining() < 4) return Truncated(what, 4);
  const int32_t v = LoadInt32(data_.data() + pos_);
  pos_ += 4;
  return v;
}

absl::StatusOr<uint16_t> Reader::ReadUint16(What what) {
  if (remaining() < 2) return Truncated(what, 2);
  const uint16_t v = LoadUint16(data_.data() + pos_);
  pos_ += 2;
  return v;
}

absl::StatusOr<int16_t> Reader::ReadInt16(What what) {
  if (remaining() < 2) return Truncated(what, 2);
  const int16_t v = static_cast<int16_t>(LoadUint16(data_.data() + pos_));
  pos_ += 2;
  return v;
}

absl::StatusOr<char> Reader::ReadByte(What what) {
  if (remaining() < 1) return Truncated(what, 1);
  return data_[pos_++];
}

absl::StatusOr<absl::string_view> Reader::ReadCString(What what) {
  const size_t nul = data_.find('\0', pos_);
  if (nul == absl::string_view::npos) {
    return Error(absl::StrCat(what.ToString(), " is not NUL-terminated (",
                              remaining(), " bytes remaining)"));
  }
  absl::string_view s = data_.substr(pos_, nul - pos_);
  pos_ = nul + 1;
  return s;
}

absl::StatusOr<absl::string_view> Reader::ReadBytes(size_t n, What what) {
  if (n > remaining()) {
    return Error(absl::StrCat(what.ToString(), " length ", n,
                              " exceeds remaining ", remaining(), " bytes"));
  }
  absl::string_view s = data_.substr(pos_, n);
  pos_ += n;
  return s;
}

absl::StatusOr<BindParam> Reader::ReadValue(What what) {
  if (remaining() < 4) {
    return Error(absl::StrCat("truncated at ", what.ToString(),
                              " length (need 4 bytes, ", remaining(),
                              " remaining)"));
  }
  const int32_t len = LoadInt32(data_.data() + pos_);
  pos_ += 4;
  if (len == -1) return BindParam{true, absl::string_view()};
  if (len < 0) {
    return Error(absl::StrCat(what.ToString(), " has invalid length ", len));
  }
  absl::StatusOr<absl::string_view> bytes =
      ReadBytes(static_cast<size_t>(len), what);
  if (!bytes.ok()) return bytes.status();
  return BindParam{false, *bytes};
}

absl::StatusOr<uint16_t> Reader::ReadCount(What what, size_t min_item_size) {
  absl::StatusOr<uint16_t> n = ReadUint16(what);
  if (!n.ok()) return n.status();
  if (static_cast<size_t>(*n) * min_item_size > remaining()) {
    return Error(absl::StrCat(what.ToString(), " ", *n, " needs at least ",
                              static_cast<size_t>(*n) * min_item_size,
                              " bytes but only ", remaining(), " remain"));
  }
  return n;
}

absl::Status Reader::ReadFormats(size_t n, const char* label,
                                 std::vector<int16_t>* out) {
  out->clear();
  out->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    absl::StatusOr<int16_t> f = ReadInt16(What(label, i + 1));
    if (!f.ok()) return f.status();
    if (*f != 0 && *f != 1) {
      return Error(absl::StrCat(label, " ", i + 1, " is ", *f,
                                " (must be 0 for text or 1 for binary)"));
    }
    out->push_back(*f);
  }
  return absl::OkStatus();
}

absl::Status Reader::ExpectEnd() const {
  if (AtEnd()) return absl::OkStatus();
  return Error(
      absl::StrCat(remaining(), " trailing bytes after the last field"));
}

}  // namespace warden::dataplane::pgwire::internal
