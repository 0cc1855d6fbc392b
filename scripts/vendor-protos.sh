#!/usr/bin/env bash
# Copies the google/api, google/rpc and google/type protos the contracts import from the
# googleapis-common-protos wheel (pinned in requirements.lock) into third_party/, with its licence.
# Re-run after upgrading the wheel; CI checks the copy matches.
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
.venv/bin/buf format -w third_party  # keep `buf format --exit-code` quiet over the whole workspace
echo "vendored from $(basename "$dist")" > third_party/google/VERSION
