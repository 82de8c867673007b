#!/usr/bin/env bash
# Builds the relocatable bundle for air-gapped clusters: one tarball with the tessera binary, the shared libraries
# it and Open MPI need that a bare Debian or RHEL-like node lacks (Open MPI with its plugins and help files, PMIx,
# UCX and its transport modules, OpenBLAS, yaml-cpp, libstdc++, ... and, unless BUNDLE_CUDA_LIBS=0, the CUDA
# runtime, cuBLASLt and NCCL), a launch environment (env.sh: OPAL_PREFIX, PMIX_INSTALL_PREFIX, PATH,
# LD_LIBRARY_PATH), the configs, the cluster scripts and a SHA-256 manifest.
# Usage: cluster/bundle/make-bundle.sh TESSERA_BINARY OUT_DIR       (make bundle calls it)
#   BUNDLE_CUDA_LIBS=0   leave libcudart/libcublasLt/libnccl out (the node must then have CUDA 13 installed)
#   BUNDLE_COMPRESS=zst  write .tar.zst (zstd, several times faster than gzip) instead of .tar.gz
# Never bundled: glibc (the node's must be at least this build machine's), the NVIDIA driver (libcuda,
# libnvidia-ml), rdma-core (libibverbs and its per-HCA providers must match the node's kernel).
set -euo pipefail
if (($# != 2)); then
  echo "usage: make-bundle.sh TESSERA_BINARY OUT_DIR" >&2
  exit 2
fi
binary="$(realpath "$1")"
out="$(mkdir -p "$2" && realpath "$2")"
root="$(cd "$(dirname "$0")/../.." && pwd)"
[[ -x "$binary" ]] || { echo "make-bundle: no executable at $binary (build first)" >&2; exit 2; }
version="$("$binary" version 2>/dev/null | head -n1 | awk '{print $NF}')"
name="tessera-${version:-unknown}-$(uname -m)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
B="$stage/$name"
multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
syslib="/usr/lib/$multiarch"
mkdir -p "$B/bin" "$B/libexec" "$B/lib"

# Open MPI in the same layout under the bundle as under its prefix (/usr on Debian), so that OPAL_PREFIX=<bundle>
# relocates every path it compiled in: libdir, pkglibdir (the plugins), pkgdatadir (the help texts).
ompi_path() { ompi_info --path "$1" --parsable 2>/dev/null | awk -F: '{print $NF}'; }
ompi_prefix="$(ompi_path prefix)"; ompi_prefix="${ompi_prefix:-/usr}"
ompi_libdir="$(ompi_path libdir)"; ompi_libdir="${ompi_libdir:-$syslib/openmpi/lib}"
ompi_pkgdatadir="$(ompi_path pkgdatadir)"; ompi_pkgdatadir="${ompi_pkgdatadir:-/usr/share/openmpi}"
rel_libdir="${ompi_libdir#"$ompi_prefix"}"
rel_pkgdatadir="${ompi_pkgdatadir#"$ompi_prefix"}"
mkdir -p "$B$rel_libdir" "$B$rel_pkgdatadir"
cp -a "$ompi_libdir"/. "$B$rel_libdir/"
rm -rf "$B$rel_libdir/pkgconfig" "$B$rel_libdir"/*.a
cp -a "$ompi_pkgdatadir"/. "$B$rel_pkgdatadir/"
for tool in orterun orted ompi_info; do cp -L "$(command -v "$tool")" "$B/bin/$tool"; done
ln -s orterun "$B/bin/mpirun"
ln -s orterun "$B/bin/mpiexec"
# PMIx (Debian keeps it in a prefix of its own) with its plugins, in pmix/; PMIX_INSTALL_PREFIX relocates it.
pmix_prefix="$syslib/pmix2"
if [[ -d "$pmix_prefix" ]]; then
  mkdir -p "$B/pmix"
  cp -a "$pmix_prefix/lib" "$pmix_prefix/share" "$B/pmix/"
  rm -f "$B/pmix/lib"/*.a
fi
# UCX finds its transport modules in <directory of libucs>/ucx.
[[ -d "$syslib/ucx" ]] && cp -a "$syslib/ucx" "$B/lib/ucx"

cp "$binary" "$B/libexec/tessera"

# Every shared library the binary, the Open MPI tools and all plugins load, resolved here, minus the node's own.
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libutil\.so|libresolv\.so|'
skip+='libcuda\.so|libnvidia-|libibverbs|librdmacm|libmlx[45]|libefa|libpsm|libfabric|libucm_cuda|libuct_cuda)'
if [[ "${BUNDLE_CUDA_LIBS:-1}" == 0 ]]; then
  skip="${skip%)}|libcudart|libcublas|libnccl)"
fi
mapfile -t objects < <(find "$B/libexec" "$B/bin" "$B/lib" "$B/pmix" -type f \( -name '*.so*' -o -perm -u+x \) 2>/dev/null)
declare -A wanted=()
for obj in "${objects[@]}"; do
  while read -r lib _ path _; do
    [[ "$path" == /* && ! "$lib" =~ $skip ]] || continue
    wanted["$lib"]="$path"
  done < <(ldd "$obj" 2>/dev/null | grep '=>' || true)
done
for lib in "${!wanted[@]}"; do
  # Open MPI's own libraries are already in its libdir (also on LD_LIBRARY_PATH).
  [[ -e "$B$rel_libdir/$lib" ]] && continue
  cp -L "${wanted[$lib]}" "$B/lib/$lib"
done

# The launch environment: source it, or run bin/tessera, which sources it.
sed -e "s|@OMPI_LIBDIR@|${rel_libdir}|g" \
  "$root/cluster/bundle/env.sh.in" >"$B/env.sh"
cp "$root/cluster/bundle/tessera-wrapper.sh" "$B/bin/tessera"
chmod +x "$B/bin/tessera"
mkdir -p "$B/cluster"
cp -a "$root/configs" "$B/configs"
cp -a "$root/cluster/slurm" "$root/cluster/env" "$root/cluster/k8s" "$root/cluster/mpirun-hostfile.sh" \
  "$root/cluster/hostfile.example" "$B/cluster/" 2>/dev/null || true
cp "$root/cluster/bundle/README.bundle.md" "$B/README.md"
cp "$root/scripts/fetch-model.sh" "$B/fetch-model.sh"

(cd "$B" && find . -type f ! -name MANIFEST.sha256 -print0 | sort -z | xargs -0 sha256sum >MANIFEST.sha256)
if [[ "${BUNDLE_COMPRESS:-gz}" == zst ]]; then
  tarball="$out/$name.tar.zst"
  tar -C "$stage" -cf - "$name" | zstd -q -1 -T0 >"$tarball"
else
  tarball="$out/$name.tar.gz"
  tar -C "$stage" -cf - "$name" | gzip -1 >"$tarball"
fi
echo "make-bundle: $tarball ($(du -h "$tarball" | cut -f1); $(wc -l <"$B/MANIFEST.sha256") files, $(ls "$B/lib" | wc -l) libraries in lib/)"
