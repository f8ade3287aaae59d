#!/usr/bin/env bash
# Builds the .deb from the already built tree (cpack installs, never compiles) into a temp dir
# and checks what a user would get: files, conffiles, metadata, dependencies, a runnable binary,
# the copyright, changelog, man page and examples. With KEEP_DIR the .deb is left there (for
# the lintian test, so the package is built once).
# Usage: check_deb.sh CPACK_COMMAND CPACK_CONFIG SOURCE_DIR VERSION [KEEP_DIR]
# `test && ok || fail` is if-then-else here: ok only echoes, it cannot fail.
# shellcheck disable=SC2015
set -euo pipefail

cpack=${1:?cpack command}
config=${2:?CPackConfig.cmake}
source_dir=${3:?source dir}
version=${4:?project version}
keep_dir=${5:-}

failures=0
fail() { echo "check_deb: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "check_deb: ok: $*"; }

# CPack's SHLIBDEPS needs dpkg-shlibdeps (dpkg-dev) and file(1) (file); scripts/setup.sh has both.
for tool in dpkg-deb dpkg-shlibdeps file; do
  command -v "$tool" >/dev/null 2>&1 || { echo "check_deb: $tool is missing (apt-get install dpkg-dev file)" >&2; exit 2; }
done
[ -f "$config" ] || { echo "check_deb: $config not found: is cmake/packaging.cmake included?" >&2; exit 2; }
if [ -n "$keep_dir" ]; then rm -rf "$keep_dir"; fi

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
expect_file -rw-r--r-- /usr/share/doc/devin-orch/copyright
expect_file -rw-r--r-- /usr/share/doc/devin-orch/changelog.gz
expect_file -rw-r--r-- /usr/share/doc/devin-orch/examples/devin-orch.yaml
expect_file -rw-r--r-- /usr/share/doc/devin-orch/examples/jobs.yaml
expect_file -rw-r--r-- /usr/share/man/man1/devin-orch.1.gz
if grep -q 'devin-sim' "$work/contents"; then fail "devin-sim is in the package"; else ok "no devin-sim"; fi
strays=$(awk '$1 !~ /^d/ {print $2}' "$work/contents" |
  grep -vE '^/(usr/bin/devin-orch|lib/systemd/system/devin-orch\.service|etc/devin-orch/devin-orch\.yaml|usr/share/doc/devin-orch/[^/]+|usr/share/doc/devin-orch/examples/[^/]+\.yaml|usr/share/doc/devin-orch/images/[^/]+\.png|usr/share/man/man1/devin-orch\.1\.gz)$' || true)
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
maintainer_form='^[^<]+ <[^@>]+@([^>]+)>$'
if [[ "$(field Maintainer)" =~ $maintainer_form ]]; then
  host=${BASH_REMATCH[1],,}
  # A host that mail can reach: a domain with a dot, none of the names reserved for examples,
  # tests and local use (RFC 2606, RFC 6761), which lintian calls bogus or which bounce.
  if [[ "$host" != *.* || "$host" =~ (^|\.)(example(\.(com|net|org))?|localhost|localdomain|test|invalid|local)$ ]]; then
    fail "Maintainer address has a host mail cannot reach: $(field Maintainer)"
  else
    ok "Maintainer $(field Maintainer)"
  fi
else
  fail "Maintainer is not 'Name <email>': $(field Maintainer)"
fi
[ -n "$(field Section)" ] && ok "Section $(field Section)" || fail "no Section"
[ -n "$(field Description)" ] && ok "Description" || fail "no Description"
[ -z "$(field Homepage)" ] && ok "no Homepage" || fail "Homepage set: $(field Homepage)"
depends=$(field Depends)
echo "check_deb: Depends: $depends"
# From dpkg-shlibdeps, so the list follows the real binary: every shared library it loads has
# its package there, plus the CA store.
mkdir -p "$work/root" && dpkg-deb -x "$deb" "$work/root"
needed=$(readelf -d "$work/root/usr/bin/devin-orch" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
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
cmp -s "$work/root/lib/systemd/system/devin-orch.service" "$source_dir/systemd/devin-orch.service" \
  && ok "unit matches systemd/devin-orch.service" || fail "packaged unit differs from the source"
cmp -s "$work/root/etc/devin-orch/devin-orch.yaml" "$source_dir/config/devin-orch.yaml" \
  && ok "config matches config/devin-orch.yaml" || fail "packaged config differs from the source"
reported=$("$work/root/usr/bin/devin-orch" --version 2>&1 || true)
[ "$reported" = "devin-orch $version" ] && ok "packaged binary: $reported" \
  || fail "packaged binary --version printed '$reported'"

# The documents Debian asks for: copyright (DEP-5), the changelog (gzip -9, its latest entry
# this version), the examples as in the sources.
doc="$work/root/usr/share/doc/devin-orch"
cmp -s "$doc/copyright" "$source_dir/packaging/copyright" && head -1 "$doc/copyright" |
  grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/$' \
  && ok "copyright is packaging/copyright, DEP-5" || fail "copyright differs from packaging/copyright or is not DEP-5"
if zcat "$doc/changelog.gz" 2>/dev/null | cmp -s - "$source_dir/packaging/changelog"; then
  ok "changelog.gz is packaging/changelog"
else
  fail "changelog.gz is not packaging/changelog gzip'ed"
fi
file -b "$doc/changelog.gz" | grep -q 'max compression' && ok "changelog.gz: gzip -9" \
  || fail "changelog.gz is not gzip -9: $(file -b "$doc/changelog.gz")"
latest=$(zcat "$doc/changelog.gz" | sed -n '1s/^devin-orch (\([^)]*\)).*/\1/p')
[ "$latest" = "$version" ] && ok "changelog's latest entry is $version" || fail "changelog's latest entry is '$latest', not $version"
for example in devin-orch.yaml jobs.yaml; do
  cmp -s "$doc/examples/$example" "$source_dir/examples/production/$example" \
    && ok "examples/$example is examples/production/$example" || fail "examples/$example differs from the source"
done

# The man page: made from the packaged binary's own help, so it has every command that help lists.
page="$work/root/usr/share/man/man1/devin-orch.1.gz"
file -b "$page" | grep -q 'max compression' && ok "devin-orch.1.gz: gzip -9" || fail "devin-orch.1.gz is not gzip -9"
zcat "$page" >"$work/devin-orch.1"
grep -q "^\.TH DEVIN\\\\-ORCH 1 .*\"devin\\\\-orch $version\"" "$work/devin-orch.1" \
  && ok "man page header names version $version" || fail "man page .TH line: $(grep '^\.TH' "$work/devin-orch.1")"
commands=$("$work/root/usr/bin/devin-orch" --help | sed -n 's/^  \([a-z][a-z-]*\)  .*/\1/p')
[ -n "$commands" ] || fail "devin-orch --help lists no command"
for command in $commands; do
  grep -qF ".SS \"devin\\-orch ${command//-/\\-}\"" "$work/devin-orch.1" \
    || fail "man page has no section for '$command'"
done
ok "man page has a section for each of: $(echo $commands)"

if [ "$failures" -ne 0 ]; then
  echo "check_deb: $failures check(s) failed" >&2
  exit 1
fi
echo "check_deb: $(basename "$deb") OK ($(stat -c %s "$deb") bytes)"
if [ -n "$keep_dir" ]; then
  mkdir -p "$keep_dir" && cp "$deb" "$keep_dir/" && echo "check_deb: kept in $keep_dir"
fi
