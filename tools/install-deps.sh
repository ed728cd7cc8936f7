#!/usr/bin/env bash
# Installs the Debian packages the project runs when they are missing, without letting their
# services start: a packaged redis would listen on its default port system-wide and a packaged
# prometheus on *:9090; the project starts private instances on loopback instead
# (cc_core/redis_server.py, tests/prom.py).
# Default set: redis-server (tests, demo, bench), prometheus (prometheus + promtool: rules and
# dashboards checked by the real thing), chromium (the wallboard's headless browser test).
set -euo pipefail

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(redis-server prometheus chromium)

missing=()
for pkg in "${want[@]}"; do
  case "$pkg" in
    redis-server) command -v redis-server >/dev/null 2>&1 || missing+=("$pkg") ;;
    make) command -v make >/dev/null 2>&1 || missing+=("$pkg") ;;
    prometheus) { command -v prometheus && command -v promtool; } >/dev/null 2>&1 \
                  || missing+=("$pkg") ;;
    chromium) command -v chromium >/dev/null 2>&1 || missing+=("$pkg") ;;
    *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to apt-get install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi

echo "installing Debian packages: ${missing[*]}"
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  # exit 101 = "action forbidden": invoke-rc.d will not start the packaged services.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
# An if, not `[ … ] && …`: under set -e the trap's false test would become the exit status.
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# A unit may still have been enabled; stop anything that slipped through. Not the
# recommended prometheus-node-exporter either: --no-install-recommends keeps it out.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for unit in redis-server prometheus; do
    $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
