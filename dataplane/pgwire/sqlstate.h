// SQLSTATE codes Warden sends in ErrorResponse / NoticeResponse messages
// (PostgreSQL Appendix A). Contract: five-character constants, nothing else.
#ifndef WARDEN_DATAPLANE_PGWIRE_SQLSTATE_H_
#define WARDEN_DATAPLANE_PGWIRE_SQLSTATE_H_

namespace warden::dataplane::pgwire {

inline constexpr char kSuccessfulCompletion[] = "00000";
inline constexpr char kConnectionException[] = "08000";
inline constexpr char kRejectedConnection[] = "08004";
inline constexpr char kConnectionFailure[] = "08006";
inline constexpr char kProtocolViolation[] = "08P01";
inline constexpr char kFeatureNotSupported[] = "0A000";
inline constexpr char kInvalidAuthorization[] = "28000";
inline constexpr char kInvalidPassword[] = "28P01";
inline constexpr char kInvalidCursorName[] = "34000";
inline constexpr char kInvalidCatalogName[] = "3D000";
inline constexpr char kSyntaxError[] = "42601";
inline constexpr char kInsufficientPrivilege[] = "42501";
inline constexpr char kInsufficientResources[] = "53000";
inline constexpr char kTooManyConnections[] = "53300";
inline constexpr char kProgramLimitExceeded[] = "54000";
inline constexpr char kQueryCanceled[] = "57014";
inline constexpr char kAdminShutdown[] = "57P01";
inline constexpr char kCannotConnectNow[] = "57P03";
inline constexpr char kInternalError[] = "XX000";

}  // namespace warden::dataplane::pgwire

#endif  // WARDEN_DATAPLANE_PGWIRE_SQLSTATE_H_
