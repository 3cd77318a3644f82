#!/usr/bin/env bash
# The example's "build": writes a small report into the output directory.
set -euo pipefail
out=$1
{
  echo "${GREETING:-hello} from kiln"
  echo "pipeline: $KILN_PIPELINE"
  echo "event:    $KILN_EVENT"
  echo "ref:      $KILN_REF"
  echo "commit:   $KILN_COMMIT"
  echo "version:  $IMAGE_VERSION"
} > "$out/report.txt"
cat "$out/report.txt"
