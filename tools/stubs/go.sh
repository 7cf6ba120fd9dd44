#!/bin/sh
# Generates Go stubs (messages and gRPC clients) for token.v1 into one package.
#
#   tools/stubs/go.sh OUT_DIR IMPORT_PATH
#
# e.g. `tools/stubs/go.sh ./internal/tokenpb example.com/app/internal/tokenpb`
# writes OUT_DIR/token/v1/*.pb.go, package token_v1, importable as
# IMPORT_PATH/token/v1. The protos name no go_package (adding one would change
# the published descriptors), so the import path is given here with protoc's
# M options; the wire paths stay `token.v1.*`.
#
# With protoc-gen-go-grpc on PATH (google.golang.org/protobuf generation) it
# emits *.pb.go and *_grpc.pb.go; otherwise it uses protoc-gen-go's older
# `plugins=grpc` mode, which is what Debian ships (golang-goprotobuf-dev with
# golang-google-grpc-dev: grpc-go 1.33, GOPATH under /usr/share/gocode).
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 OUT_DIR IMPORT_PATH" >&2
  exit 64
fi
out=$1
import_path=$2/token/v1
repo=$(cd "$(dirname "$0")/../.." && pwd)
files="token/v1/errors.proto token/v1/token_service.proto token/v1/mfa_service.proto token/v1/mfa_token_service.proto"
mappings=""
for file in $files; do mappings="$mappings,M$file=$import_path"; done
mkdir -p "$out"
if command -v protoc-gen-go-grpc >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  protoc -I "$repo/proto" \
    --go_out="$out" --go_opt="paths=source_relative$mappings" \
    --go-grpc_out="$out" --go-grpc_opt="paths=source_relative$mappings" \
    $files
else
  # shellcheck disable=SC2086
  protoc -I "$repo/proto" --go_out="plugins=grpc,paths=source_relative$mappings:$out" $files
fi
echo "wrote $out/token/v1 (import $import_path)"
