#!/usr/bin/env bash
# Fetch Debian trixie's Pebble (2.6, with ACME Renewal Information) into .peers/pebble-ari/, for the ARI tests.
# Does nothing when it is there already. Usage: scripts/fetch_pebble_ari.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=$(pwd)/.peers/pebble-ari
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie

if [ -x "$DEST/usr/bin/pebble" ]; then
  exit 0
fi
for tool in curl xz dpkg-deb sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch_pebble_ari: $tool is needed and not installed" >&2; exit 1; }
done
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

INDEX="$MIRROR/dists/$SUITE/main/binary-$ARCH/Packages.xz"
if ! curl -fsS --retry 2 --max-time 300 -o "$WORK/Packages.xz" "$INDEX"; then
  echo "fetch_pebble_ari: cannot download the package index $INDEX" >&2
  exit 1
fi
xz -dc "$WORK/Packages.xz" > "$WORK/Packages"
STANZA=$(awk '/^Package: pebble$/ {found=1} found && /^$/ {exit} found' "$WORK/Packages")
FILENAME=$(printf '%s\n' "$STANZA" | sed -n 's/^Filename: //p')
SHA256=$(printf '%s\n' "$STANZA" | sed -n 's/^SHA256: //p')
if [ -z "$FILENAME" ] || [ -z "$SHA256" ]; then
  echo "fetch_pebble_ari: no pebble package (Filename and SHA256) in $INDEX" >&2
  exit 1
fi

if ! curl -fsS --retry 2 --max-time 600 -o "$WORK/pebble.deb" "$MIRROR/$FILENAME"; then
  echo "fetch_pebble_ari: cannot download $MIRROR/$FILENAME" >&2
  exit 1
fi
if ! echo "$SHA256  $WORK/pebble.deb" | sha256sum -c --status; then
  echo "fetch_pebble_ari: $MIRROR/$FILENAME does not match the SHA256 of the package index" >&2
  exit 1
fi

rm -rf "$DEST.partial"
mkdir -p "$DEST.partial"
dpkg-deb -x "$WORK/pebble.deb" "$DEST.partial"
if [ ! -x "$DEST.partial/usr/bin/pebble" ]; then
  echo "fetch_pebble_ari: $FILENAME holds no usr/bin/pebble" >&2
  rm -rf "$DEST.partial"
  exit 1
fi
rm -rf "$DEST"
mv "$DEST.partial" "$DEST"
echo "fetch_pebble_ari: $(basename "$FILENAME") unpacked into .peers/pebble-ari/"
