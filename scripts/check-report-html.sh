#!/usr/bin/env bash
# Render a crmbench report.html in headless Chromium (the system package,
# no download) and check what a reader would see: not blank, every SVG drawn
# with a non-zero size, no network request but the file itself. Saves
# REPORT.png beside it. Usage: scripts/check-report-html.sh REPORT.html
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 REPORT.html" >&2
  exit 2
fi
exec python3 "$(dirname "$0")/check_report_html.py" "$1"
