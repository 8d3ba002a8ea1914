#!/usr/bin/env bash
# Headless Chromium for the browser check (tests/live/test_browser.py): Debian's `chromium` package.
# Idempotent: does nothing when /usr/bin/chromium is already there. No Python packages and no browser
# downloads -- the test drives Chromium over its DevTools protocol with `websockets` (already pinned).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x "$CHROMIUM" ]]; then
    echo "chromium already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "need root (or sudo) to apt-get install chromium" >&2; exit 1; }
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core

"$CHROMIUM" --version
