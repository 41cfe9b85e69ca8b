#!/usr/bin/env bash
# Debian packages the test suite talks to: real SIP peers, speech, the browser for Playwright, and nginx
# (deploy/nginx tested in front of two API processes).
# Installs only what is missing; needs root (or sudo).
set -euo pipefail
packages=(sip-tester baresip espeak-ng sox chromium kamailio kamailio-tls-modules nftables nginx)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
