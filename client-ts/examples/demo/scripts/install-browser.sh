#!/usr/bin/env bash
# install-browser.sh installs Debian's Chromium for the demo's browser test
# (playwright-core drives /usr/bin/chromium; Playwright's own browser
# download is not reachable here). Does nothing when it is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
	echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-browser.sh: /usr/bin/chromium is missing; run as root or: sudo apt-get install chromium" >&2
	exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $(/usr/bin/chromium --version)"
