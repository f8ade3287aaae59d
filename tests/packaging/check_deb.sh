#!/usr/bin/env bash
# Builds the .deb from the already built tree (cpack installs, never compiles) into a temp dir
# and checks what a user would get: files, conffiles, metadata, dependencies, a runnable binary.
# Usage: check_deb.sh CPACK_COMMAND CPACK_CONFIG SOURCE_DIR VERSION
# `test && ok || fail` is if-then-else here: ok only echoes, it cannot fail.
# shellcheck disable=SC2015
set -euo pipefail

cpack=${1:?cpack command}
config=${2:?CPackConfig.cmake}
source_dir=${3:?source dir}
version=${4:?project version}

failures=0
fail() { echo "check_deb: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "check_deb: ok: $*"; }

# CPack's SHLIBDEPS needs dpkg-shlibdeps (dpkg-dev) and file(1) (file); scripts/setup.sh has both.
for tool in dpkg-deb dpkg-shlibdeps file; do
  command -v "$tool" >/dev/null 2>&1 || { echo "check_deb: $tool is missing (apt-get install dpkg-dev file)" >&2; exit 2; }
done
[ -f "$config" ] || { echo "check_deb: $config not found: is cmake/packaging.cmake included?" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! "$cpack" -G DEB --config "$config" -B "$work/out" >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log" >&2
  echo "check_deb: cpack failed (is devin-orch built?)" >&2
  exit 1
fi
grep -i 'warning' "$work/cpack.log" >&2 && fail "cpack printed warnings (above)"
shopt -s nullglob
debs=("$work"/out/*.deb)
[ ${#debs[@]} -eq 1 ] || { echo "check_deb: expected one .deb, got ${#debs[@]}" >&2; exit 1; }
deb=${debs[0]}
arch=$(dpkg --print-architecture)
[ "$(basename "$deb")" = "devin-orch_${version}_${arch}.deb" ] && ok "file name $(basename "$deb")" \
  || fail "file name $(basename "$deb"), expected devin-orch_${version}_${arch}.deb"

# Contents: exactly the runtime files, each at its FHS place.
dpkg-deb -c "$deb" | awk '{print $1, $6}' | sed 's# \./# /#' >"$work/contents"
expect_file() { # mode-prefix path
  if grep -qE "^$1[^ ]* $2\$" "$work/contents"; then ok "$2"; else fail "$2 missing (or wrong mode)"; fi
}
expect_file -rwxr-xr-x /usr/bin/devin-orch
expect_file -rw-r--r-- /lib/systemd/system/devin-orch.service
expect_file -rw-r--r-- /etc/devin-orch/devin-orch.yaml
expect_file -rw-r--r-- /usr/share/doc/devin-orch/architecture.md
expect_file -rw-r--r-- /usr/share/doc/devin-orch/deployment.md
if grep -q 'devin-sim' "$work/contents"; then fail "devin-sim is in the package"; else ok "no devin-sim"; fi
strays=$(awk '$1 !~ /^d/ {print $2}' "$work/contents" |
  grep -vE '^/(usr/bin/devin-orch|lib/systemd/system/devin-orch\.service|etc/devin-orch/devin-orch\.yaml|usr/share/doc/devin-orch/[^/]+)$' || true)
[ -z "$strays" ] && ok "no other files" || fail "unexpected files: $strays"

# Conffiles: an edited config survives upgrades.
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
[ "$conffiles" = "/etc/devin-orch/devin-orch.yaml" ] && ok "conffiles: $conffiles" \
  || fail "conffiles is '$conffiles', expected /etc/devin-orch/devin-orch.yaml"

# Metadata.
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = devin-orch ] && ok "Package" || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] && ok "Version $version" || fail "Version: $(field Version)"
[ "$(field Architecture)" = "$arch" ] && ok "Architecture $arch" || fail "Architecture: $(field Architecture)"
maintainer_form='^[^<]+ <[^@>]+@[^>]+>$'
[[ "$(field Maintainer)" =~ $maintainer_form ]] && ok "Maintainer $(field Maintainer)" \
  || fail "Maintainer is not 'Name <email>': $(field Maintainer)"
[ -n "$(field Section)" ] && ok "Section $(field Section)" || fail "no Section"
[ -n "$(field Description)" ] && ok "Description" || fail "no Description"
[ -z "$(field Homepage)" ] && ok "no Homepage" || fail "Homepage set: $(field Homepage)"
depends=$(field Depends)
echo "check_deb: Depends: $depends"
# From dpkg-shlibdeps, so the list follows the real binary: every shared library it loads has
# its package there, plus the CA store.
mkdir -p "$work/binary" && dpkg-deb -x "$deb" "$work/binary"
needed=$(readelf -d "$work/binary/usr/bin/devin-orch" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
[ -n "$needed" ] && ok "the binary's shared libraries: $(echo $needed)" || fail "readelf found no shared library"
# Debian's libraries as packaged: each third-party library is loaded, not compiled or linked in,
# so Debian's updates of it reach the daemon.
for library in libboost_json libboost_url libspdlog libfmt libfyaml libssl libsqlite3 libstdc++; do
  [[ " $(echo $needed) " == *" $library.so."* ]] && ok "loads $library" || fail "does not load $library.so (linked in?)"
done
required="libc6 libssl3 libsqlite3-0 ca-certificates"
for library in $needed; do
  case "$library" in
    libstdc++.so.*) required+=" libstdc++6" ;;
    libgcc_s.so.*) required+=" libgcc-s1" ;;
    libfyaml.so.*) required+=" libfyaml0" ;;
    libboost_json.so.*) required+=" libboost-json1.81.0" ;;
    libboost_url.so.*) required+=" libboost-url1.81.0" ;;
    # Debian's shlibs name the spdlog built against fmt 9; libspdlog1.10 provides it.
    libspdlog.so.*) required+=" libspdlog1.10-fmt9" ;;
    libfmt.so.*) required+=" libfmt9" ;;
  esac
done
for dependency in $required; do
  [[ ", $depends," == *", $dependency"[\ ,]* ]] && ok "Depends has $dependency" || fail "Depends lacks $dependency"
done

# Maintainer scripts are executable shell scripts.
dpkg-deb -e "$deb" "$work/control"
for script in postinst prerm postrm; do
  [ -x "$work/control/$script" ] && sh -n "$work/control/$script" && ok "$script" || fail "$script missing, not executable or not valid sh"
done

# The packaged files are the sources' files, and the stripped binary still runs.
dpkg-deb -x "$deb" "$work/root"
cmp -s "$work/root/lib/systemd/system/devin-orch.service" "$source_dir/systemd/devin-orch.service" \
  && ok "unit matches systemd/devin-orch.service" || fail "packaged unit differs from the source"
cmp -s "$work/root/etc/devin-orch/devin-orch.yaml" "$source_dir/config/devin-orch.yaml" \
  && ok "config matches config/devin-orch.yaml" || fail "packaged config differs from the source"
reported=$("$work/root/usr/bin/devin-orch" --version 2>&1 || true)
[ "$reported" = "devin-orch $version" ] && ok "packaged binary: $reported" \
  || fail "packaged binary --version printed '$reported'"

if [ "$failures" -ne 0 ]; then
  echo "check_deb: $failures check(s) failed" >&2
  exit 1
fi
echo "check_deb: $(basename "$deb") OK ($(stat -c %s "$deb") bytes)"
