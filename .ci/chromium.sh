#!/usr/bin/env bash
# Headless Chromium from Debian's packages, for the test that opens optuna-dashboard in a real browser
# (tests/test_dashboard.py; skipped where Chromium is absent). Never fails the caller.
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 \
    || echo "warning: could not install chromium; the browser test will be skipped" >&2
else
  echo "warning: chromium is not installed; the browser test will be skipped" >&2
fi
exit 0
