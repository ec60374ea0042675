#include "dataplane/pgwire/encoder.h"

#include <cassert>
#include <cstdint>
#include <limits>

#include "dataplane/pgwire/messages.h"

namespace warden::dataplane::pgwire {
namespace {

void PutUint32(char* p, uint32_t v) {
  p[0] = static_cast<char>((v >> 24) & 0xff);
  p[1] = static_cast<char>((v >> 16) & 0xff);
  p[2] = static_cast<char>((v >> 8) & 0xff);
  p[3] = static_cast<char>(v & 0xff);
}

void WriteAuth(std::string* out, int32_t code, absl::string_view data) {
  MessageWriter w(out);
  w.Begin('R');
  w.Int32(code);
  w.Bytes(data);
  w.End();
}

void WriteBodyless(std::string* out, char type) {
  MessageWriter w(out);
  w.Begin(type);
  w.End();
}

}  // namespace

MessageWriter::MessageWriter(std::string* out) : out_(out) {}

void MessageWriter::Begin(char type) {
  assert(!open_);
  open_ = true;
  if (type != 0) out_->push_back(type);
  length_pos_ = out_->size();
  out_->append(4, '\0');
}

void MessageWriter::Int32(int32_t v) {
  char buf[4];
  PutUint32(buf, static_cast<uint32_t>(v));
  out_->append(buf, 4);
}

void MessageWriter::Int16(int16_t v) {
  const uint16_t u = static_cast<uint16_t>(v);
  out_->push_back(static_cast<char>((u >> 8) & 0xff));
  out_->push_back(static_cast<char>(u & 0xff));
}

void MessageWriter::Byte(char c) { out_->push_back(c); }

void MessageWriter::CString(absl::string_view s) {
  const size_t nul = s.find('\0');
  if (nul != absl::string_view::npos) s = s.substr(0, nul);
  out_->append(s.data(), s.size());
  out_->push_back('\0');
}

void MessageWriter::Bytes(absl::string_view s) {
  out_->append(s.data(), s.size());
}

void MessageWriter::End() {
  assert(open_);
  open_ = false;
  const size_t len = out_->size() - length_pos_;
  assert(len <= static_cast<size_t>(std::numeric_limits<int32_t>::max()));
  PutUint32(&(*out_)[length_pos_], static_cast<uint32_t>(len));
}

// ----------------------------------------------------------------- backend

void WriteAuthenticationOk(std::string* out) { WriteAuth(out, kAuthOk, {}); }

void WriteAuthenticationCleartextPassword(std::string* out) {
  WriteAuth(out, kAuthCleartextPassword, {});
}

void WriteAuthenticationMd5Password(std::string* out, absl::string_view salt4) {
  WriteAuth(out, kAuthMd5Password, salt4);
}

void WriteAuthenticationSasl(std::string* out,
                             const std::vector<std::string>& mechanisms) {
  MessageWriter w(out);
  w.Begin('R');
  w.Int32(kAuthSasl);
  for (const std::string& m : mechanisms) w.CString(m);
  w.Byte('\0');
  w.End();
}

void WriteAuthenticationSaslContinue(std::string* out, absl::string_view data) {
  WriteAuth(out, kAuthSaslContinue, data);
}

void WriteAuthenticationSaslFinal(std::string* out, absl::string_view data) {
  WriteAuth(out, kAuthSaslFinal, data);
}

void WriteBackendKeyData(std::string* out, int32_t pid, int32_t secret) {
  MessageWriter w(out);
  w.Begin('K');
  w.Int32(pid);
  w.Int32(secret);
  w.End();
}

void WriteParameterStatus(std::string* out, absl::string_view name,
                          absl::string_view value) {
  MessageWriter w(out);
  w.Begin('S');
  w.CString(name);
  w.CString(value);
  w.End();
}

void WriteReadyForQuery(std::string* out, char status) {
  MessageWriter w(out);
  w.Begin('Z');
  w.Byte(status);
  w.End();
}

namespace {

void WriteErrorOrNotice(std::string* out, char type, absl::string_view severity,
                        absl::string_view sqlstate, absl::string_view message,
                        absl::string_view detail, absl::string_view hint,
                        int position = 0) {
  MessageWriter w(out);
  w.Begin(type);
  w.Byte('S');
  w.CString(severity);
  w.Byte('V');
  w.CString(severity);
  w.Byte('C');
  w.CString(sqlstate);
  w.Byte('M');
  w.CString(message);
  if (!detail.empty()) {
    w.Byte('D');
    w.CString(detail);
  }
  if (!hint.empty()) {
    w.Byte('H');
    w.CString(hint);
  }
  if (position > 0) {
    w.Byte('P');
    w.CString(std::to_string(position));
  }
  w.Byte('\0');
  w.End();
}

}  // namespace

void WriteErrorResponse(std::string* out, absl::string_view severity,
                        absl::string_view sqlstate, absl::string_view message,
                        absl::string_view detail, absl::string_view hint,
                        int position) {
  WriteErrorOrNotice(out, 'E', severity, sqlstate, message, detail, hint,
                     position);
}

void WriteNoticeResponse(std::string* out, absl::string_view severity,
                         absl::string_view sqlstate,
                         absl::string_view message) {
  WriteErrorOrNotice(out, 'N', severity, sqlstate, message, {}, {});
}

void WriteNegotiateProtocolVersion(
    std::string* out, int32_t newest_minor,
    const std::vector<std::string>& unrecognized) {
  MessageWriter w(out);
  w.Begin('v');
  w.Int32(newest_minor);
  w.Int32(static_cast<int32_t>(unrecognized.size()));
  for (const std::string& name : unrecognized) w.CString(name);
  w.End();
}

void WriteCommandComplete(std::string* out, absl::string_view tag) {
  MessageWriter w(out);
  w.Begin('C');
  w.CString(tag);
  w.End();
}

void WriteEmptyQueryResponse(std::string* out) { WriteBodyless(out, 'I'); }

// ---------------------------------------------------------------- frontend

void WriteStartupMessage(
    std::string* out,
    const std::vector<std::pair<std::string, std::string>>& params) {
  MessageWriter w(out);
  w.Begin(0);
  w.Int32(kProtocolV3);
  for (const auto& [name, value] : params) {
    w.CString(name);
    w.CString(value);
  }
  w.Byte('\0');
  w.End();
}

void WriteSslRequest(std::string* out) {
  MessageWriter w(out);
  w.Begin(0);
  w.Int32(kSslRequestCode);
  w.End();
}

void WriteGssEncRequest(std::string* out) {
  MessageWriter w(out);
  w.Begin(0);
  w.Int32(kGssEncRequestCode);
  w.End();
}

void WriteCancelRequest(std::string* out, int32_t pid, int32_t secret) {
  MessageWriter w(out);
  w.Begin(0);
  w.Int32(kCancelRequestCode);
  w.Int32(pid);
  w.Int32(secret);
  w.End();
}

void WritePasswordMessage(std::string* out, absl::string_view password) {
  MessageWriter w(out);
  w.Begin('p');
  w.CString(password);
  w.End();
}

void WriteSaslInitialResponse(std::string* out, absl::string_view mechanism,
                              absl::string_view data) {
  MessageWriter w(out);
  w.Begin('p');
  w.CString(mechanism);
  w.Int32(static_cast<int32_t>(data.size()));
  w.Bytes(data);
  w.End();
}

void WriteSaslResponse(std::string* out, absl::string_view data) {
  MessageWriter w(out);
  w.Begin('p');
  w.Bytes(data);
  w.End();
}

void WriteQuery(std::string* out, absl::string_view sql) {
  MessageWriter w(out);
  w.Begin('Q');
  w.CString(sql);
  w.End();
}

void WriteSync(std::string* out) { WriteBodyless(out, 'S'); }

void WriteParse(std::string* out, absl::string_view statement,
                absl::string_view sql) {
  MessageWriter w(out);
  w.Begin('P');
  w.CString(statement);
  w.CString(sql);
  w.Int16(0);
  w.End();
}

void WriteBind(std::string* out, absl::string_view portal,
               absl::string_view statement) {
  MessageWriter w(out);
  w.Begin('B');
  w.CString(portal);
  w.CString(statement);
  w.Int16(0);  // parameter formats.
  w.Int16(0);  // parameters.
  w.Int16(0);  // result formats.
  w.End();
}

void WriteDescribe(std::string* out, char kind, absl::string_view name) {
  MessageWriter w(out);
  w.Begin('D');
  w.Byte(kind);
  w.CString(name);
  w.End();
}

void WriteClose(std::string* out, char kind, absl::string_view name) {
  MessageWriter w(out);
  w.Begin('C');
  w.Byte(kind);
  w.CString(name);
  w.End();
}

void WriteExecute(std::string* out, absl::string_view portal) {
  MessageWriter w(out);
  w.Begin('E');
  w.CString(portal);
  w.Int32(0);  // no row limit.
  w.End();
}

void WriteTerminate(std::string* out) { WriteBodyless(out, 'X'); }

}  // namespace warden::dataplane::pgwire
