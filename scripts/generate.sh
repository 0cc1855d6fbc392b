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
rm -rf generated/python/agora generated/python/buf clients/go/gen
buf generate --template buf.gen.yaml --path protos/agora

# protovalidate's rules (buf/validate/validate.proto): the contracts' descriptors import it,
# so Python needs its module, which no package ships for the google.protobuf runtime. Go
# imports its published module instead, so this template has only the Python plugins
# (no managed mode: the embedded descriptor stays exactly the vendored file).
buf generate --path third_party/buf/validate --template '{
  "version": "v2",
  "plugins": [
    {"protoc_builtin": "python", "protoc_path": [".venv/bin/python", "-m", "grpc_tools.protoc"],
     "out": "generated/python"},
    {"local": ".venv/bin/protoc-gen-mypy", "out": "generated/python"}
  ]
}'

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

# The policy of every RPC as a document (docs/policies.md), from the descriptors just generated.
python scripts/policy_doc.py
