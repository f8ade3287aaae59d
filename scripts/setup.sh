#!/usr/bin/env bash
# Installs what devin-orch needs to build, test and run its demo on Debian 12 (bookworm).
# Idempotent: installs only what is missing. Needs root (or sudo) only when something is.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev libspdlog-dev libfyaml-dev libgtest-dev libgmock-dev
  python3 python3-requests python3-yaml sqlite3 openssl ca-certificates
  systemd dpkg-dev file procps lintian
  clang libclang-rt-14-dev
  libpq-dev postgresql-15
  # promtool (`promtool check metrics` judges /metrics in tests/integration). The package also
  # ships the Prometheus server: where policy-rc.d forbids starting services (containers, CI) it
  # is only installed; on a workstation booted with systemd its postinst enables and starts
  # prometheus.service (port 9090): `systemctl disable --now prometheus` if unwanted.
  prometheus
  # Headless Chromium drives the dashboard's pages in tests (tests/integration/
  # dashboard_browser_test.py: the DOM it renders, an XSS check, the forms, screenshots).
  chromium
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "setup: missing packages (${missing[*]}) and not root; install them first" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
