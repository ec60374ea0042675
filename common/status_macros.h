// Project-wide status helpers: Debian's Abseil (20220623) has no
// ABSL_RETURN_IF_ERROR, so Warden defines the one pair it uses.
#ifndef WARDEN_COMMON_STATUS_MACROS_H_
#define WARDEN_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// WARDEN_RETURN_IF_ERROR(expr): returns the absl::Status of `expr` if not OK.
//   WARDEN_RETURN_IF_ERROR(config.Validate());
#define WARDEN_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    const ::absl::Status warden_status_ = (expr);    \
    if (!warden_status_.ok()) return warden_status_; \
  } while (0)

#define WARDEN_STATUS_CONCAT_INNER_(a, b) a##b
#define WARDEN_STATUS_CONCAT_(a, b) WARDEN_STATUS_CONCAT_INNER_(a, b)

// WARDEN_ASSIGN_OR_RETURN(lhs, expr): evaluates the StatusOr `expr`, returns
// its status on error, else moves its value into `lhs`.
//   WARDEN_ASSIGN_OR_RETURN(Config config, LoadConfig(path));
#define WARDEN_ASSIGN_OR_RETURN(lhs, expr) \
  WARDEN_ASSIGN_OR_RETURN_IMPL_(           \
      WARDEN_STATUS_CONCAT_(warden_statusor_, __LINE__), lhs, expr)
#define WARDEN_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // WARDEN_COMMON_STATUS_MACROS_H_
