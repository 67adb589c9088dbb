#!/usr/bin/env bash
# Install, start and initialise a local Incus for Containarium MCP on Debian 12 (as root).
# Built for hosts without systemd as PID 1 and without internet (only the Debian mirror
# that apt already uses). Idempotent: a second run only checks state and prints a summary.
#
# Usage: scripts/incus-setup.sh [--status | --stop]
# Env:   CONTAINARIUM_CACHE_DIR (image tarball cache, default /var/cache/containarium)
#        INCUS_POOL_SIZE (loop-backed btrfs pool, default 10GiB)
#        DEBIAN_MIRROR (override the mirror taken from the apt sources)
set -euo pipefail

CACHE_DIR="${CONTAINARIUM_CACHE_DIR:-/var/cache/containarium}"
POOL_SIZE="${INCUS_POOL_SIZE:-10GiB}"
BRIDGE_ADDR=10.98.0.1           # explicit: subnet auto-detection fails behind this VM's default route
LIBEXEC=/usr/libexec/incus
SOCK=/var/lib/incus/unix.socket
LOG=/var/log/incus/incusd.log
ARCH="$(uname -m)"
export PATH="$LIBEXEC:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[incus-setup] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

TMP=""
cleanup() { # debootstrap may leave /proc or /sys mounted in the rootfs if it fails half way
  [ -n "$TMP" ] || return 0
  awk -v t="$TMP/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l || true
  rm -rf --one-file-system "$TMP"
}
trap cleanup EXIT
tmpdir() { [ -n "$TMP" ] || TMP="$(mktemp -d /var/tmp/incus-setup.XXXXXX)"; }

# The Debian archive apt already uses: the URI of the entry whose suites include plain
# "bookworm" (not -security), from deb822 *.sources files first, then one-line sources.list.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local f m=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    m="$(awk -v RS= '{ uri = ""; ok = 0; off = 0; n = split($0, l, "\n")
        for (i = 1; i <= n; i++) {
          if (l[i] ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", l[i]); split(l[i], u, /[ \t]+/); uri = u[1] }
          if (l[i] ~ /^Suites:/ && (l[i] " ") ~ /[ \t]bookworm[ \t]/) ok = 1
          if (l[i] ~ /^Enabled:[ \t]*no/) off = 1 }
        if (ok && !off && uri != "") { print uri; exit } }' "$f")"
    [ -n "$m" ] && break
  done
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m="$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                            if ($(i + 1) == "bookworm") { print $i; exit } }' /etc/apt/sources.list)"
  fi
  [ -n "$m" ] || die "no bookworm entry in the apt sources; set DEBIAN_MIRROR"
  echo "${m%/}"
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

# 1. Packages. bookworm-backports is added through a throw-away apt config so /etc/apt
#    stays untouched; incus-base is the container-only daemon (the incus package pulls QEMU).
#    dnsmasq-base is only a Recommends of incus-base, but bridges cannot be created without it.
install_packages() {
  local main=() p
  for p in btrfs-progs debootstrap zstd busybox-static dnsmasq-base; do pkg_installed "$p" || main+=("$p"); done
  if [ -x "$LIBEXEC/incusd" ] && [ ${#main[@]} -eq 0 ]; then return; fi
  local mirror; mirror="$(debian_mirror)"
  tmpdir; local t="$TMP/apt"
  mkdir -p "$t/parts" "$t/lists/partial" "$t/cache/archives/partial"
  chmod 755 "$TMP" "$t"   # apt downloads as the unprivileged _apt user
  chown _apt "$t/lists/partial" "$t/cache/archives/partial" 2>/dev/null || true
  cp /etc/apt/sources.list "$t/sources.list" 2>/dev/null || : >"$t/sources.list"
  cp /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list "$t/parts/" 2>/dev/null || true
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "$mirror" /usr/share/keyrings/debian-archive-keyring.gpg >"$t/parts/containarium-backports.sources"
  local apt=(apt-get -q -y -o Dir::Etc::sourcelist="$t/sources.list" -o Dir::Etc::sourceparts="$t/parts"
             -o Dir::State::Lists="$t/lists" -o Dir::Cache="$t/cache")
  log "apt: using mirror $mirror (+ bookworm-backports, temporary lists)"
  "${apt[@]}" update >/dev/null
  [ ${#main[@]} -eq 0 ] || "${apt[@]}" install --no-install-recommends "${main[@]}" >/dev/null
  [ -x "$LIBEXEC/incusd" ] || "${apt[@]}" install --no-install-recommends -t bookworm-backports incus-base >/dev/null
  [ -x "$LIBEXEC/incusd" ] || die "incus-base did not install $LIBEXEC/incusd"
}

incus_ready() { [ -S "$SOCK" ] && curl -sf --max-time 2 --unix-socket "$SOCK" http://incus/1.0 >/dev/null 2>&1; }

# 2. Daemons. No systemd here (post-install scripts cannot start services), so run lxcfs
#    and incusd detached in their own sessions; they keep running after this script exits.
#    lxcfs first: incusd only detects it at start-up, and without it a container's
#    /proc/meminfo etc. show the host instead of its limits. Neither may inherit fd 9, the
#    setup lock (see the end): a daemon holding it would make every later run wait forever.
start_daemon() {
  getent group incus-admin >/dev/null || groupadd --system incus-admin
  if incus_ready; then return; fi
  # A session that ended kills lxcfs but leaves its FUSE mount behind, dead: every access
  # then fails with "Transport endpoint is not connected". Detach it so lxcfs can remount.
  if grep -qs ' /var/lib/lxcfs ' /proc/self/mounts && ! stat /var/lib/lxcfs >/dev/null 2>&1; then
    log "detaching a stale lxcfs mount"
    umount -l /var/lib/lxcfs
  fi
  mkdir -p "$(dirname "$LOG")" /var/lib/lxcfs
  if ! mountpoint -q /var/lib/lxcfs; then
    log "starting lxcfs"
    setsid nohup /usr/bin/lxcfs /var/lib/lxcfs </dev/null >>/var/log/lxcfs.log 2>&1 9>&- &
    echo $! >/run/lxcfs.pid
    for _ in $(seq 50); do mountpoint -q /var/lib/lxcfs && break; sleep 0.1; done
  fi
  log "starting incusd"
  ulimit -n 1048576 2>/dev/null || true      # same limits as Debian's incus.service
  setsid nohup "$LIBEXEC/incusd" --group incus-admin --logfile="$LOG" </dev/null >>"${LOG%.log}.stderr.log" 2>&1 9>&- &
  echo $! >/run/incusd.pid
  incus admin waitready --timeout=60 >&2 || die "incusd not ready after 60 s; see $LOG"
}

# 3. Initialise once. `incus admin init --minimal` fails here (no free subnet found), so use
#    an explicit bridge subnet and a loop-backed btrfs pool (it enforces root disk sizes).
#    Only missing pieces go into the preseed, so a half-done earlier run gets completed.
initialised() { [ "$(incus profile device get default eth0 network 2>/dev/null)" = incusbr0 ]; }
init_incus() {
  initialised && return
  log "initialising: bridge incusbr0 $BRIDGE_ADDR/24, btrfs pool default ($POOL_SIZE)"
  {
    incus network show incusbr0 >/dev/null 2>&1 || echo "networks: [{name: incusbr0, type: bridge,
      config: {ipv4.address: $BRIDGE_ADDR/24, ipv4.nat: 'true', ipv6.address: none}}]"
    incus storage show default >/dev/null 2>&1 || echo "storage_pools: [{name: default, driver: btrfs,
      config: {size: $POOL_SIZE}}]"
    echo "profiles: [{name: default, devices: {root: {type: disk, path: /, pool: default},
      eth0: {type: nic, name: eth0, network: incusbr0}}}]"
  } | incus admin init --preseed
}

# Image metadata with a hostname template (Incus renders it on create/copy).
write_metadata() { # DIR DESCRIPTION OS RELEASE
  mkdir -p "$1/templates"
  cat >"$1/metadata.yaml" <<EOF
architecture: $ARCH
creation_date: $(date +%s)
properties:
  description: $2
  os: $3
  release: $4
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
EOF
  echo '{{ container.name }}' >"$1/templates/hostname.tpl"
}

# Pack metadata + rootfs as one unified tarball, atomically into the cache.
pack() { # DIR OUT
  mkdir -p "$CACHE_DIR"
  tar -C "$1" --numeric-owner --xattrs -I 'zstd -q -T0 -6' -cf "$2.part" metadata.yaml templates rootfs
  mv "$2.part" "$2"
}

# A unified tarball's fingerprint is its sha256: if only the alias went missing, re-alias.
import_image() { # ALIAS FILE
  local fp; fp="$(sha256sum "$2" | cut -d' ' -f1)"
  if incus image info "$fp" >/dev/null 2>&1; then
    log "re-aliasing existing image ${fp:0:12} as $1"; incus image alias create "$1" "$fp"
  else
    log "importing $2 as $1"; incus image import "$2" --alias "$1" >/dev/null
  fi
}

# 4. Debian 12 (systemd 252 still boots on a cgroup v1 host; 256+ does not). The cached
#    tarball bakes in BRIDGE_ADDR as DNS server: delete it if you change the bridge.
build_debian() {
  local out="$CACHE_DIR/debian-12-$ARCH.tar.zst" w r
  if [ ! -s "$out" ]; then
    tmpdir; w="$TMP/debian"; r="$w/rootfs"
    log "debootstrap bookworm (about a minute)"
    debootstrap --variant=minbase --include=systemd-sysv,udev,dbus,iproute2 \
      bookworm "$r" "$(debian_mirror)" >"$TMP/debootstrap.log" 2>&1 \
      || { tail -n 20 "$TMP/debootstrap.log" >&2; die "debootstrap failed"; }
    # DHCP on eth0 via networkd (it needs udev to see the link, hence udev above).
    local u=/lib/systemd/system e="$r/etc/systemd/system"
    mkdir -p "$r/etc/systemd/network" "$e/multi-user.target.wants" "$e/sockets.target.wants"
    printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n' >"$r/etc/systemd/network/eth0.network"
    # What `systemctl enable systemd-networkd` would create.
    ln -sf $u/systemd-networkd.service "$e/multi-user.target.wants/"
    ln -sf $u/systemd-networkd.socket "$e/sockets.target.wants/"
    ln -sf $u/systemd-networkd.service "$e/dbus-org.freedesktop.network1.service"
    # No systemd-resolved in bookworm's minbase: point DNS at the bridge's dnsmasq.
    rm -f "$r/etc/resolv.conf"; echo "nameserver $BRIDGE_ADDR" >"$r/etc/resolv.conf"
    : >"$r/etc/machine-id"; rm -f "$r/var/lib/dbus/machine-id"   # regenerated per container
    echo debian >"$r/etc/hostname"
    chroot "$r" apt-get clean; rm -rf "$r"/var/lib/apt/lists/* "$r"/var/log/*.log
    write_metadata "$w" "Debian 12 (bookworm) minbase, built locally" debian bookworm
    pack "$w" "$out"
  fi
  import_image debian/12 "$out"
}

# 5. BusyBox (~1 MB) for cheap mass creation. Incus already mounts /proc, /sys and /dev
#    (with lxcfs and the limits), so init must not mount anything; SIGPWR (Incus' clean stop) exits.
build_busybox() {
  local out="$CACHE_DIR/busybox-$ARCH.tar.zst" w r a
  if [ ! -s "$out" ]; then
    tmpdir; w="$TMP/busybox"; r="$w/rootfs"
    mkdir -p "$r"/{bin,sbin,etc,dev,proc,sys,root,run,var/log,usr/share/udhcpc} && install -d -m 1777 "$r/tmp"
    install -m 755 "$(dpkg -L busybox-static | grep -m1 '/bin/busybox$')" "$r/bin/busybox"
    for a in $("$r/bin/busybox" --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"; echo 'root:x:0:' >"$r/etc/group"
    echo busybox >"$r/etc/hostname"
    echo "nameserver $BRIDGE_ADDR" >"$r/etc/resolv.conf"
    cat >"$r/sbin/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin
ip link set lo up
udhcpc -i eth0 -q -n -t 5 -s /usr/share/udhcpc/default.script >/dev/null 2>&1 &
trap 'exit 0' PWR TERM INT
while :; do sleep 3600 & wait $!; done
EOF
    cat >"$r/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface"
for g in $router; do ip route replace default via "$g" dev "$interface"; break; done
EOF
    chmod 755 "$r/sbin/init" "$r/usr/share/udhcpc/default.script"
    write_metadata "$w" "BusyBox (static), built locally" busybox "$("$r/bin/busybox" --help | awk 'NR == 1 {print $2}')"
    pack "$w" "$out"
  fi
  import_image busybox "$out"
}

has_alias() { incus image info "$1" >/dev/null 2>&1; }

summary() {
  echo "incus:    $(incus version | tr '\n' ' ')"
  echo "pool:     default ($(incus storage show default | awk '/^driver:/ {print $2}'), $(incus storage get default size), $(incus storage get default source))"
  echo "network:  incusbr0 $(incus network get incusbr0 ipv4.address)"
  echo "images:"
  incus image list -f csv -c lfs | sed 's/^/  /'
  echo "socket:   $SOCK"
}

case "${1:-}" in
  --stop)
    if incus_ready; then incus admin shutdown --timeout 60 && log "incusd stopped"; else log "incusd not running"; fi
    exit 0 ;;
  --status)
    if incus_ready; then summary; exit 0; fi
    echo "incusd: not running"; exit 1 ;;
  "") ;;
  *) echo "usage: $0 [--status | --stop]" >&2; exit 2 ;;
esac

[ "$(id -u)" -eq 0 ] || die "run as root"
# Parallel runs (test suites, say) queue up here; one that waits ten minutes says why and stops.
exec 9>/run/containarium-incus-setup.lock
flock -w 600 9 || die "another incus-setup.sh has held /run/containarium-incus-setup.lock for 10 minutes"
install_packages
start_daemon
init_incus
has_alias debian/12 || build_debian
has_alias busybox || build_busybox
summary
