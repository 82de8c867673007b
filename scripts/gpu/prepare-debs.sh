#!/usr/bin/env bash
# Here, before a GPU run: Open MPI as Debian 12 packages in a folder that travels with the tree (`carry`), for a GPU
# machine without mpirun (scripts/gpu/verify.sh unpacks them there). Downloads only (apt-get download: no install),
# then checks that they unpack with dpkg -x into an Open MPI that runs relocated (OPAL_PREFIX) and prints the size.
#
#   scripts/gpu/prepare-debs.sh [DIR]        (default .gpu-debs in the repository root, git-ignored)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${1:-$REPO/.gpu-debs}"
# Open MPI, its wrapper compilers and headers, and the libraries it loads that a CUDA image is not expected to have
# (the first level of Depends of libopenmpi3 / libpmix2 / libfabric1 / libucx0 / libibverbs1, without libc,
# libstdc++, zlib and the compilers that libopenmpi-dev pulls in).
PACKAGES=(
  openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev
  libpmix2 libhwloc15 libhwloc-plugins libevent-core-2.1-7 libevent-pthreads-2.1-7 libmunge2
  libfabric1 libucx0 libibverbs1 ibverbs-providers librdmacm1 libpsm2-2 libpsm-infinipath1
  libnl-3-200 libnl-route-3-200 libnuma1 libatomic1 libltdl7 libpciaccess0
)
mkdir -p "$DIR"
(cd "$DIR" && apt-get download "${PACKAGES[@]}" >/dev/null)
echo "prepare-debs: $(ls "$DIR"/*.deb | wc -l) packages, $(du -sh "$DIR" | cut -f1) in $DIR"

# The check verify.sh relies on: unpacked anywhere, with OPAL_PREFIX, Open MPI finds its own pieces there.
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
source "$REPO/scripts/gpu/unpack-openmpi.sh"
unpack_openmpi "$DIR" "$root"
[[ "$(command -v mpirun)" == "$root/usr/bin/mpirun" ]] || { echo "prepare-debs: mpirun is not the unpacked one" >&2; exit 1; }
unresolved="$(ldd "$root/usr/bin/orterun" "$root"/usr/lib/*/openmpi/lib/libmpi.so | grep 'not found' || true)"
[[ -z "$unresolved" ]] || { echo "prepare-debs: unresolved libraries: $unresolved" >&2; exit 1; }
echo "prepare-debs: unpacked mpirun: $(command -v mpirun) -> $(mpirun --version 2>&1 | head -n1)"
echo "prepare-debs: its libdir (relocated): $(ompi_info --path libdir 2>&1 | sed 's/^ *//')"
echo "prepare-debs: its mpicxx: $(command -v mpicxx), include dirs (relocated): $(mpicxx --showme:incdirs 2>&1)"
flags=(); [[ "$(id -u)" == 0 ]] && flags+=(--allow-run-as-root)
echo "prepare-debs: 2 ranks: $(mpirun "${flags[@]}" --oversubscribe -np 2 hostname 2>&1 | paste -sd' ' -)"
