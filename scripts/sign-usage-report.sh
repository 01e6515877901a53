#!/usr/bin/env bash
# Signs a usage report for upload. Reads the report object (JSON) from a file or stdin and writes the envelope
# {"report": <the same bytes>, "signature": {"algorithm": "HMAC-SHA256", "value": <hex>}} to stdout.
# The signature is the HMAC-SHA256 of exactly the bytes embedded as "report", keyed with the customer's secret.
#
#   USAGE_REPORT_SECRET='<the customer signing secret>' scripts/sign-usage-report.sh report.json > signed-report.json
#
# Needs: bash, openssl. The secret is passed to openssl on its command line; on a shared machine prefer the
# C# example in docs/usage-reports.md, which keeps it in memory.
set -euo pipefail

case "${1:-}" in
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
esac

: "${USAGE_REPORT_SECRET:?set USAGE_REPORT_SECRET to the customer signing secret}"

report=$(cat "${1:-/dev/stdin}")               # trailing newlines are dropped here...
report="${report#"${report%%[![:space:]]*}"}"  # ...and leading white space here: the report starts at its brace
signature=$(printf '%s' "$report" | openssl dgst -sha256 -hmac "$USAGE_REPORT_SECRET" | awk '{print $NF}')
printf '{"report":%s,"signature":{"algorithm":"HMAC-SHA256","value":"%s"}}\n' "$report" "$signature"
