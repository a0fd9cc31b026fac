#!/usr/bin/env bash
# Check the protobuf schemas:
#   1. regenerate the Python from schemas/v1/*.proto into a temporary directory, with exactly the command used
#      to produce the committed code, and fail on any difference (changed, missing or stale *_pb2.py / *_pb2.pyi);
#   2. `buf lint` (STANDARD rules, configured in buf.yaml) and `buf format` (no diff allowed).
# buf comes from npm (@bufbuild/buf, pinned below) and is installed into .tools/ (gitignored) when missing.
#
# Environment: PYTHON (default .venv/bin/python, needs grpcio-tools), BUF_VERSION (default below).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-.venv/bin/python}"
BUF_VERSION="${BUF_VERSION:-1.75.0}"
BUF="$ROOT/.tools/node_modules/.bin/buf"

fail() {
    echo "check_protos: FAIL: $*" >&2
    exit 1
}

shopt -s nullglob
protos=(schemas/v1/*.proto)
[ "${#protos[@]}" -gt 0 ] || fail "no .proto files under schemas/v1"

# --- 1. generated code is up to date ------------------------------------------------------------------------
"$PYTHON" -c "import grpc_tools.protoc" 2>/dev/null \
    || fail "$PYTHON cannot import grpc_tools (install the dev extra: pip install -e '.[dev]')"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" -m grpc_tools.protoc -I . --python_out="$tmp" --pyi_out="$tmp" "${protos[@]}" \
    || fail "protoc could not compile schemas/v1/*.proto"

mkdir -p "$tmp/committed/schemas/v1"
committed=(schemas/v1/*_pb2.py schemas/v1/*_pb2.pyi)
if [ "${#committed[@]}" -gt 0 ]; then
    cp "${committed[@]}" "$tmp/committed/schemas/v1/"
fi

if ! diff -ru "$tmp/committed/schemas/v1" "$tmp/schemas/v1" >"$tmp/gen.diff"; then
    sed -e "s#$tmp/committed/##g" -e "s#$tmp/#(regenerated) #g" "$tmp/gen.diff" >&2
    fail "committed schemas/v1/*_pb2.py(i) differ from what protoc generates. Regenerate with:
    $PYTHON -m grpc_tools.protoc -I . --python_out=. --pyi_out=. schemas/v1/*.proto
(and delete any *_pb2 file whose .proto is gone)"
fi
echo "check_protos: generated Python is up to date (${#protos[@]} protos)"

# --- 2. buf lint + format -----------------------------------------------------------------------------------
if [ ! -x "$BUF" ] || [ "$("$BUF" --version 2>/dev/null)" != "$BUF_VERSION" ]; then
    command -v npm >/dev/null || fail "buf is not installed in .tools/ and npm is not available to install it"
    echo "check_protos: installing @bufbuild/buf@$BUF_VERSION into .tools/"
    npm install --prefix .tools --no-save --no-audit --no-fund "@bufbuild/buf@$BUF_VERSION" >&2 \
        || fail "npm install @bufbuild/buf@$BUF_VERSION failed"
    [ -x "$BUF" ] || fail "buf not found at $BUF after install"
fi

"$BUF" lint || fail "buf lint reported problems (rules: STANDARD, see buf.yaml)"
echo "check_protos: buf lint passed"

"$BUF" format --diff --exit-code \
    || fail "buf format would change the files above; apply with: $BUF format -w"
echo "check_protos: buf format clean"
echo "check_protos: OK"
