#!/usr/bin/env bash
# Regenerates everything derived from the contracts. Deterministic: CI runs it and fails
# on any diff (`make generate && git diff --exit-code`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.bin:$PWD/.venv/bin:$PATH"

# The Go plugins come from `make tools` (versions pinned in the Makefile).
for tool in protoc-gen-go protoc-gen-go-grpc; do
  [ -x ".bin/$tool" ] || { echo "missing .bin/$tool: run 'make tools'" >&2; exit 1; }
done

# Python into generated/python, Go into the module at clients/go (package path gen/agora/...).
rm -rf generated/python/agora clients/go/gen
buf generate --template buf.gen.yaml --path protos/agora

# grpc_python is not a buf builtin: compile the grpc stubs from a buf image instead.
image=$(mktemp --suffix=.binpb)
trap 'rm -f "$image"' EXIT
buf build -o "$image"
mapfile -t files < <(cd protos && find agora -name '*_service.proto' | sort)
python -m grpc_tools.protoc --descriptor_set_in="$image" \
  --grpc_python_out=generated/python "${files[@]}"

# mypy_grpc writes a stub for every file; keep only those next to real grpc modules.
find generated/python/agora -name '*_pb2_grpc.pyi' | while read -r stub; do
  [ -f "${stub%.pyi}.py" ] || rm -f "$stub"
done
