// Forwards to tests/unit/controlplane/controlplane_fixture.h, only for
// wardenctl_remote_test.cc until it moves to tests/unit/controlplane/cli/
// (delete this header and its target in tests/unit/BUILD.bazel then).
#ifndef WARDEN_TESTS_UNIT_CONTROLPLANE_FIXTURE_FORWARD_H_
#define WARDEN_TESTS_UNIT_CONTROLPLANE_FIXTURE_FORWARD_H_

#include "tests/unit/controlplane/controlplane_fixture.h"

#endif  // WARDEN_TESTS_UNIT_CONTROLPLANE_FIXTURE_FORWARD_H_
