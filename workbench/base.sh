#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch Debian's linux-source-7.3 (trixie-backports) with a private apt
# configuration and turn it into a git repository with one tagged base commit.
# Idempotent: does nothing when the tag already exists in $TREE.
. "$(dirname "$0")/lib.sh"

if git -C "$TREE" rev-parse -q --verify "refs/tags/$BASE_TAG" >/dev/null 2>&1; then
	exit 0
fi

APTDIR=$CACHE/apt
mkdir -p "$APTDIR"/etc/apt/{sources.list.d,preferences.d,apt.conf.d} \
	"$APTDIR"/var/lib/apt/lists/partial "$APTDIR"/var/cache/apt/archives/partial \
	"$APTDIR"/var/lib/dpkg "$APTDIR"/dl
touch "$APTDIR/var/lib/dpkg/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "missing $keyring (install debian-archive-keyring)"
echo "deb [signed-by=$keyring] http://deb.debian.org/debian trixie-backports main" \
	> "$APTDIR/etc/apt/sources.list"
cat > "$APTDIR/apt.conf" <<CONF
Dir::State "$APTDIR/var/lib/apt/";
Dir::State::status "$APTDIR/var/lib/dpkg/status";
Dir::Cache "$APTDIR/var/cache/apt/";
Dir::Etc "$APTDIR/etc/apt/";
Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d/";
APT::Architecture "amd64";
APT::Sandbox::User "root";
CONF
export APT_CONFIG=$APTDIR/apt.conf

log "fetching package lists for trixie-backports (private apt config in $APTDIR)"
apt-get -q update >"$APTDIR/update.log" 2>&1 || { cat "$APTDIR/update.log" >&2; die "apt-get update failed"; }
served=$(apt-cache policy linux-source-7.3 | sed -n 's/^  Candidate: //p')
[ -n "$served" ] && [ "$served" != "(none)" ] || die "linux-source-7.3 is not served by trixie-backports"
if [ "$served" != "$BASE_VERSION" ]; then
	cat >&2 <<MSG
[wb] ##################################################################
[wb] WARNING: BASE pins linux-source-7.3 $BASE_VERSION,
[wb] WARNING: but the archive now serves $served.
[wb] WARNING: trying the pinned version; update BASE and rebase the
[wb] WARNING: series if that version is gone.
[wb] ##################################################################
MSG
fi
deb=$(ls "$APTDIR"/dl/linux-source-7.3_*.deb 2>/dev/null | grep -F "_${BASE_VERSION}_" || true)
if [ -z "$deb" ]; then
	(cd "$APTDIR/dl" && apt-get -q download "linux-source-7.3=$BASE_VERSION") \
		|| die "cannot download linux-source-7.3=$BASE_VERSION (served: $served)"
	deb=$(ls "$APTDIR"/dl/linux-source-7.3_*.deb | grep -F "_${BASE_VERSION}_")
fi

log "unpacking $(basename "$deb")"
rm -rf "$CACHE/unpack" "$TREE"
mkdir -p "$CACHE/unpack"
dpkg-deb -x "$deb" "$CACHE/unpack"
tarball=$(ls "$CACHE"/unpack/usr/src/linux-source-7.3.tar.*)
mkdir -p "$TREE"
tar -xf "$tarball" -C "$TREE" --strip-components=1
rm -rf "$CACHE/unpack"

log "creating git repository in $TREE"
cd "$TREE"
git init -q -b wb
git config user.name "Workbench"
git config user.email "workbench@localhost"
git config core.abbrev 12
git add -A -f .
git commit -q -m "Linux $(make -s kernelversion) (Debian linux-source-7.3 $BASE_VERSION)"
git tag "$BASE_TAG"
"$WB_TOP/workbench/unignore.sh" "$TREE"
log "base tree ready: $(git log --oneline -1) tagged $BASE_TAG"
