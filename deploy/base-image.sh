#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Makes the base image `debian:bookworm-slim` locally (no image registry needed): a debootstrap
# minbase of Debian 12 from deb.debian.org, slimmed like the official image (no apt lists, docs
# or man pages, apt told not to install recommends), imported into podman (or docker).
# The rootfs tarball is cached in $POINTCAST_CACHE (default /var/cache/pointcast), so after the
# first run this is an `image exists` check or a few-second import.
# Usage: deploy/base-image.sh [podman|docker]
set -euo pipefail
engine="${1:-podman}"
cache="${POINTCAST_CACHE:-/var/cache/pointcast}"
tarball="$cache/debian-bookworm-minbase.tar"
image=docker.io/library/debian:bookworm-slim
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf '[base-image] %s\n' "$*" >&2; }

if "$engine" image inspect "$image" >/dev/null 2>&1; then exit 0; fi

if [ ! -s "$tarball" ]; then
  mkdir -p "$cache"
  root="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$root"' EXIT
  log "debootstrap --variant=minbase bookworm from $mirror (once; cached in $tarball)"
  nice debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    "$mirror" "$mirror" >"$root/etc/apt/sources.list"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$root/etc/apt/apt.conf.d/90slim"
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\npath-include /usr/share/doc/*/copyright\n' \
    >"$root/etc/dpkg/dpkg.cfg.d/90slim"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/*/changelog* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log
  tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
log "importing $tarball as $image"
"$engine" import --change 'CMD ["bash"]' "$tarball" "$image" >/dev/null
