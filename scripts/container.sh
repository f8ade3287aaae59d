#!/usr/bin/env bash
# Builds the real container image from the Dockerfile without a Docker engine or a registry
# (buildah, chroot isolation, a debootstrapped bookworm base), then smoke-runs the binary in it.
#
# Usage: scripts/container.sh [--image NAME] [--no-cache] [--refresh-base]
#   --image         image to build (default: localhost/devin-orch:latest, also tagged :<version>)
#   --no-cache      rebuild every Dockerfile layer
#   --refresh-base  debootstrap the base rootfs again instead of using the cached tarball
# Needs root (debootstrap, buildah's chroot isolation). The base rootfs is cached in
# ${XDG_CACHE_HOME:-~/.cache}/devin-orch/, so a second run only rebuilds changed layers.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
image="localhost/devin-orch:latest"
layers=(--layers)
refresh_base=0
while [ $# -gt 0 ]; do
  case "$1" in
    --image) image=${2:?--image needs a name}; shift 2 ;;
    --no-cache) layers=(--layers --no-cache); shift ;;
    --refresh-base) refresh_base=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "container: unknown argument: $1" >&2; exit 2 ;;
  esac
done

started=$SECONDS
phase_started=$SECONDS
phase() {
  echo "container: [$((SECONDS - started))s] $*" >&2
  phase_started=$SECONDS
}
phase_done() { echo "container:   done in $((SECONDS - phase_started))s" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "container: run as root (debootstrap and buildah --isolation chroot need it)" >&2
  exit 2
fi

missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  phase "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  phase_done
fi

# The Dockerfile must pass the project lint before anything is built; dockerfile-utils is an
# extra opinion when npx can reach it (this script needs the network anyway).
phase "linting the Dockerfile"
python3 "$repo/tests/packaging/lint_dockerfile.py" --context "$repo"
if command -v npx >/dev/null 2>&1; then
  if ! lint_output=$(cd "$repo" && timeout 120 npx --yes dockerfile-utils lint Dockerfile 2>&1); then
    printf '%s\n' "$lint_output" >&2
    echo "container: dockerfile-utils lint failed" >&2
    exit 1
  fi
  printf '%s\n' "$lint_output" | grep -v '^npm warn' >&2 || true
fi
phase_done

# One minbase rootfs serves both FROM lines. Tagged under docker.io/library/ so the unchanged
# Dockerfile resolves to it, and `--pull=never` guarantees no registry is contacted.
cache=${XDG_CACHE_HOME:-$HOME/.cache}/devin-orch
rootfs_tar="$cache/debian-bookworm-minbase.tar"
base_images=(docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim)
if [ "$refresh_base" -eq 1 ] || [ ! -s "$rootfs_tar" ]; then
  phase "debootstrapping bookworm (minbase) into $rootfs_tar"
  mkdir -p "$cache"
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  mirror=http://deb.debian.org/debian
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    tail -n 20 "$cache/debootstrap.log" >&2
    rm -rf "$rootfs"
    exit 1
  }
  # The same apt sources as the official image: point release, updates and security.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" --numeric-owner -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$rootfs"
  for base in "${base_images[@]}"; do buildah rmi "$base" >/dev/null 2>&1 || true; done
  phase_done
fi

if ! buildah inspect --type image "${base_images[0]}" >/dev/null 2>&1; then
  phase "importing the rootfs as ${base_images[*]}"
  base_ctr=$(buildah from scratch)
  buildah add --quiet "$base_ctr" "$rootfs_tar" / >/dev/null
  buildah config --cmd '["bash"]' "$base_ctr"
  buildah commit --quiet --format docker "$base_ctr" "${base_images[0]}" >/dev/null
  buildah rm "$base_ctr" >/dev/null
  phase_done
fi
for base in "${base_images[@]:1}"; do
  buildah inspect --type image "$base" >/dev/null 2>&1 || buildah tag "${base_images[0]}" "$base"
done

version=$(sed -nE 's/^project\(devin-orch VERSION ([0-9.]+).*/\1/p' "$repo/CMakeLists.txt")
phase "building $image (version ${version:-unknown})"
version_tag=()
if [ -n "$version" ]; then version_tag=(--tag "${image%:*}:$version"); fi
# The context has no .git: the commit goes in as a build argument for the binary's build_info.
commit=$(git -C "$repo" rev-parse --verify HEAD 2>/dev/null || true)
if [ -n "$commit" ] && [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  commit="$commit-dirty"
fi
buildah bud --isolation chroot --format docker --pull=never "${layers[@]}" \
  --build-arg "GIT_COMMIT=$commit" \
  --tag "$image" "${version_tag[@]}" --file "$repo/Dockerfile" "$repo"
phase_done

phase "smoke-running the image"
ctr=$(buildah from --pull=never "$image")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
run() { buildah run --isolation chroot "$@"; }
echo "container: devin-orch --version: $(run "$ctr" -- /usr/bin/devin-orch --version)"
echo "container: runs as uid:gid $(run "$ctr" -- id -u):$(run "$ctr" -- id -g)"
# The shipped config must load in the image (only the org id is deliberately left empty), and a
# secret mounted the documented way (/run/secrets, uid 10001, mode 0400) must be found.
secret_dir=$(mktemp -d)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$secret_dir"' EXIT
printf 'cog_container_smoke_test' >"$secret_dir/devin-api-key"
chown 10001:10001 "$secret_dir/devin-api-key"
chmod 0400 "$secret_dir/devin-api-key"
check=$(run --env DEVIN_ORCH_ORG_ID=org-smoke \
  --volume "$secret_dir/devin-api-key:/run/secrets/devin-api-key:ro" "$ctr" -- \
  /usr/bin/devin-orch check-config --config /etc/devin-orch/devin-orch.yaml)
if ! grep -q '^# API key: found' <<<"$check"; then
  printf '%s\n' "$check" >&2
  echo "container: check-config did not find the key mounted at /run/secrets/devin-api-key" >&2
  exit 1
fi
echo "container: check-config with the key as a /run/secrets secret: OK"
if run "$ctr" -- /usr/bin/devin-orch healthcheck --help >/dev/null 2>&1; then
  echo "container: devin-orch healthcheck --help: OK"
else
  echo "container: WARNING: this binary has no 'healthcheck' subcommand yet; the image's HEALTHCHECK will fail until it does" >&2
fi
healthcheck=$(buildah inspect --type image --format '{{.Docker.Config.Healthcheck}}' "$image")
echo "container: image HEALTHCHECK: $healthcheck"
case "$healthcheck" in *healthcheck*) ;; *) echo "container: HEALTHCHECK missing from the image config" >&2; exit 1 ;; esac
phase_done

size=$(buildah images --format '{{.Size}}' "$image" | head -n1)
echo "container: image $image: $size"
echo "container: total $((SECONDS - started))s"
