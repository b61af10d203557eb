#!/usr/bin/env bash
# Render a crmbench report.html in headless Chromium (the system package,
# no download) and check what a reader would see: not blank, every SVG drawn
# with a non-zero size, no network request but the file itself. Saves
# REPORT.png beside it. Usage: scripts/check-report-html.sh [--paired] REPORT.html
# (--paired: a paired run folder's report, which must open with the gate's
# verdict on the candidate).
set -euo pipefail
if [ $# -ne 1 ] && ! { [ $# -eq 2 ] && [ "$1" = --paired ]; }; then
  echo "usage: $0 [--paired] REPORT.html" >&2
  exit 2
fi
exec python3 "$(dirname "$0")/check_report_html.py" "$@"
