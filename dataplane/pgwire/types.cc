#include "dataplane/pgwire/types.h"

#include <cstring>

#include "absl/strings/str_format.h"

namespace warden::dataplane::pgwire {

const char* ToString(FrontendType t) {
  switch (t) {
    case FrontendType::kBind:
      return "Bind";
    case FrontendType::kClose:
      return "Close";
    case FrontendType::kCopyData:
      return "CopyData";
    case FrontendType::kCopyDone:
      return "CopyDone";
    case FrontendType::kCopyFail:
      return "CopyFail";
    case FrontendType::kDescribe:
      return "Describe";
    case FrontendType::kExecute:
      return "Execute";
    case FrontendType::kFlush:
      return "Flush";
    case FrontendType::kFunctionCall:
      return "FunctionCall";
    case FrontendType::kParse:
      return "Parse";
    case FrontendType::kPassword:
      return "PasswordMessage";
    case FrontendType::kQuery:
      return "Query";
    case FrontendType::kSync:
      return "Sync";
    case FrontendType::kTerminate:
      return "Terminate";
  }
  return "Unknown";
}

const char* ToString(BackendType t) {
  switch (t) {
    case BackendType::kAuthentication:
      return "Authentication";
    case BackendType::kBackendKeyData:
      return "BackendKeyData";
    case BackendType::kBindComplete:
      return "BindComplete";
    case BackendType::kCloseComplete:
      return "CloseComplete";
    case BackendType::kCommandComplete:
      return "CommandComplete";
    case BackendType::kCopyData:
      return "CopyData";
    case BackendType::kCopyDone:
      return "CopyDone";
    case BackendType::kCopyInResponse:
      return "CopyInResponse";
    case BackendType::kCopyOutResponse:
      return "CopyOutResponse";
    case BackendType::kCopyBothResponse:
      return "CopyBothResponse";
    case BackendType::kDataRow:
      return "DataRow";
    case BackendType::kEmptyQueryResponse:
      return "EmptyQueryResponse";
    case BackendType::kErrorResponse:
      return "ErrorResponse";
    case BackendType::kFunctionCallResponse:
      return "FunctionCallResponse";
    case BackendType::kNegotiateProtocolVersion:
      return "NegotiateProtocolVersion";
    case BackendType::kNoData:
      return "NoData";
    case BackendType::kNoticeResponse:
      return "NoticeResponse";
    case BackendType::kNotificationResponse:
      return "NotificationResponse";
    case BackendType::kParameterDescription:
      return "ParameterDescription";
    case BackendType::kParameterStatus:
      return "ParameterStatus";
    case BackendType::kParseComplete:
      return "ParseComplete";
    case BackendType::kPortalSuspended:
      return "PortalSuspended";
    case BackendType::kReadyForQuery:
      return "ReadyForQuery";
    case BackendType::kRowDescription:
      return "RowDescription";
  }
  return "Unknown";
}

bool IsFrontendType(char c) {
  return std::strcmp(ToString(static_cast<FrontendType>(c)), "Unknown") != 0;
}

bool IsBackendType(char c) {
  return std::strcmp(ToString(static_cast<BackendType>(c)), "Unknown") != 0;
}

std::string DescribeTypeByte(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u <= 0x7e) return absl::StrFormat("'%c'", c);
  return absl::StrFormat("0x%02x", u);
}

}  // namespace warden::dataplane::pgwire
