#!/usr/bin/env bash
# Copies the protos the contracts import into third_party/, each with its licence:
# - google/api, google/rpc and google/type from the googleapis-common-protos wheel;
# - buf/validate/validate.proto (protovalidate's rules) from the Go module
#   github.com/bufbuild/protovalidate at PROTOVALIDATE_PROTO, since the Python wheel ships
#   no .proto. That tag's rules are the schema the Python protovalidate pinned in
#   requirements.lock compiles in (2.1.0: identical descriptors; only comments differ from
#   its sdist, whose metadata cannot be prepared without a Rust toolchain).
# Re-run after upgrading either; CI checks the copy matches.
set -euo pipefail
cd "$(dirname "$0")/.."
site=$(.venv/bin/python -c 'import google.api, os; print(os.path.dirname(os.path.dirname(google.api.__path__[0])))')
dist=$(ls -d "$site"/googleapis_common_protos-*.dist-info | head -n 1)
rm -rf third_party/google
for f in api/annotations api/client api/field_behavior api/http api/launch_stage api/resource \
         rpc/code rpc/error_details rpc/status type/money; do
  mkdir -p "third_party/google/$(dirname "$f")"
  cp "$site/google/$f.proto" "third_party/google/$f.proto"
done
cp "$dist/licenses/LICENSE" third_party/google/LICENSE
echo "vendored from $(basename "$dist")" > third_party/google/VERSION

PROTOVALIDATE_PROTO=v1.2.2
module=$(go mod download -json "github.com/bufbuild/protovalidate@$PROTOVALIDATE_PROTO" |
  .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
rm -rf third_party/buf
mkdir -p third_party/buf/validate
cp "$module/proto/protovalidate/buf/validate/validate.proto" third_party/buf/validate/
cp "$module/LICENSE" third_party/buf/LICENSE
chmod u+w third_party/buf/LICENSE third_party/buf/validate/validate.proto  # the module cache is read-only
echo "vendored from github.com/bufbuild/protovalidate@$PROTOVALIDATE_PROTO" > third_party/buf/VERSION

.venv/bin/buf format -w third_party  # keep `buf format --exit-code` quiet over the whole workspace
