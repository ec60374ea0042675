// How Warden compares the names of people: user names, e-mail aliases,
// group names, and the `users` globs of policies. Two names are the same
// person's when their folded forms are equal.
//
// FoldName is Unicode's canonical caseless form (Unicode 15, D145; ICU's
// full case folding between canonical decompositions, here returned in
// NFC): "ÅSA@EXAMPLE.COM", "åsa@example.com" and "a\u030Asa@example.com"
// fold alike, as do "Kim" and "\u212Aim" (KELVIN SIGN is canonically
// K). Compatibility forms are not merged: a fullwidth "ａ" stays apart
// from "a". ASCII folds to lower case, with a fast path. Text that is not
// valid UTF-8 is only ASCII-lowered, byte for byte, so two different
// invalid names never fold alike.
//
// Thread-safe; no state.
#ifndef WARDEN_COMMON_NAMES_H_
#define WARDEN_COMMON_NAMES_H_

#include <string>

#include "absl/strings/string_view.h"

namespace warden {

std::string FoldName(absl::string_view name);

inline bool SameName(absl::string_view a, absl::string_view b) {
  return FoldName(a) == FoldName(b);
}

}  // namespace warden

#endif  // WARDEN_COMMON_NAMES_H_
