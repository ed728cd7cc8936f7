#!/usr/bin/env bash
# Installs the Debian packages the project runs (the default list is below) when they are
# missing, without letting their services start: a packaged redis, PostgreSQL or Prometheus
# would listen on its default port system-wide; the project starts its own private instances
# on loopback instead (cc_core/redis_server.py, records/pg_server.py, cc_core/prom_server.py).
set -euo pipefail

want=("$@")
# redis-server: tests, demo and bench start private instances; redis-tools: redis-cli, which
# creates the tests' private Redis Cluster; sip-tester: SIPp, whose scenarios (loadtest/sipp)
# the tests run against each other on loopback; postgresql: the record store's tests;
# prometheus: prometheus and promtool, which check the alert rules and every dashboard query;
# chromium: the wallboard's headless browser test.
[ ${#want[@]} -gt 0 ] || want=(redis-server redis-tools sip-tester postgresql prometheus chromium)

missing=()
for pkg in "${want[@]}"; do
  case "$pkg" in
    redis-server) command -v redis-server >/dev/null 2>&1 || missing+=("$pkg") ;;
    redis-tools) command -v redis-cli >/dev/null 2>&1 || missing+=("$pkg") ;;
    make) command -v make >/dev/null 2>&1 || missing+=("$pkg") ;;
    sip-tester) command -v sipp >/dev/null 2>&1 || missing+=("$pkg") ;;
    # The server binaries (initdb, pg_ctl) are what the record store's tests start.
    postgresql) compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=("$pkg") ;;
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
  for unit in redis-server postgresql prometheus; do
    $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
