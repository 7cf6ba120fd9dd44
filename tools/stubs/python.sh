#!/bin/sh
# Generates importable Python stubs (messages and gRPC clients) for token.v1.
#
#   tools/stubs/python.sh OUT_DIR [PACKAGE]      (default PACKAGE: token_service_stubs)
#
# The proto package is `token`, the name of a module of Python's standard
# library: stubs generated as they are (`from token.v1 import …`) shadow it or
# are shadowed by it, depending on sys.path. So the files are placed under
# OUT_DIR/PACKAGE/token/v1/ and their imports rewritten to
# `from PACKAGE.token.v1 import …`. Only Python names change: the file
# descriptors keep their names and packages, so the wire paths stay
# `token.v1.TokenService/VerifyMfaOtp` and friends. Import them as
#   from token_service_stubs.token.v1 import token_service_pb2, token_service_pb2_grpc
# with OUT_DIR on sys.path. Needs grpcio-tools (Debian: python3-grpc-tools);
# PYTHON names the interpreter (default python3).
set -eu
if [ $# -lt 1 ]; then
  echo "usage: $0 OUT_DIR [PACKAGE]" >&2
  exit 64
fi
out=$1
package=${2:-token_service_stubs}
case $package in
  *[!A-Za-z0-9_]* | [0-9]* | token) echo "$0: PACKAGE must be a Python identifier other than token" >&2; exit 64 ;;
esac
python=${PYTHON:-python3}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

"$python" -m grpc_tools.protoc -I "$repo/proto" \
  --python_out="$work" --grpc_python_out="$work" \
  token/v1/errors.proto token/v1/token_service.proto \
  token/v1/mfa_service.proto token/v1/mfa_token_service.proto

target=$out/$package/token/v1
mkdir -p "$target"
for dir in "$out/$package" "$out/$package/token" "$target"; do
  [ -f "$dir/__init__.py" ] || : >"$dir/__init__.py"
done
for file in "$work"/token/v1/*.py; do
  # `from token.v1 import x_pb2` and the module names protobuf records.
  sed -e "s/^from token\.v1 import /from $package.token.v1 import /" \
    -e "s/'token\.v1\.\([a-z_]*_pb2\)'/'$package.token.v1.\1'/g" \
    "$file" >"$target/$(basename "$file")"
done
echo "wrote $target (import $package.token.v1)"
