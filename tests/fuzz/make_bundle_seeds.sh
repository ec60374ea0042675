#!/usr/bin/env bash
# Regenerates the bundle_decode_fuzz seed corpus (corpus/bundle/) with a
# signing key generated for the run and discarded; no key is written.
# Usage: tests/fuzz/make_bundle_seeds.sh   (from anywhere in the checkout)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$repo/tests/fuzz/corpus/bundle"
mkdir -p "$dir"
cd "$repo"
bazel run //tests/fuzz:make_bundle_seeds -- "$dir"
ls -l "$dir"
