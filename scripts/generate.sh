#!/usr/bin/env bash
# Regenerates everything derived from the contracts. Deterministic: CI runs it and fails
# on any diff (`make generate && git diff --exit-code`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.bin:$PWD/.venv/bin:$PATH"

rm -rf generated/python/agora
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
