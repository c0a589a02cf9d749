#!/usr/bin/env bash
# prove-drift shows, on a throwaway clone of the committed repository, that
# the drift check works both ways: `client:drift` passes on the committed
# tree, and fails (printing the diff) once a Go protocol field changes
# without regeneration. The real repository is not touched.
#
#   client-ts/scripts/prove-drift.sh     (or: go tool task client:drift:prove)
set -euo pipefail

repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone --quiet "$repo" "$work/repo"
cd "$work/repo"

drift() { go tool task -t client-ts/Taskfile.yml drift >"$work/out" 2>&1; }

if ! drift; then
	cat "$work/out"
	echo "prove-drift: FAIL: the drift check fails on the committed tree (commit the regenerated contract first)" >&2
	exit 1
fi
echo "prove-drift: committed tree: drift check passes"

# Rename one JSON field of a wire message, as a careless Go change would.
sed -i 's/`json:"reason"`/`json:"why"`/' backend/protocol/protocol.go
git diff --quiet -- backend/protocol/protocol.go && { echo "prove-drift: FAIL: the mutation did not apply" >&2; exit 1; }

if drift; then
	cat "$work/out"
	echo "prove-drift: FAIL: the drift check passed although ResyncMessage.reason became why" >&2
	exit 1
fi
if ! grep -q '^+  why: ResyncReason;' "$work/out"; then
	cat "$work/out"
	echo "prove-drift: FAIL: the drift check failed without showing the changed field" >&2
	exit 1
fi
echo "prove-drift: mutated protocol (ResyncMessage reason -> why): drift check fails and prints:"
grep -E '^[-+] ' "$work/out"
echo "prove-drift: OK"
