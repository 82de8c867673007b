# Sourced by scripts/gpu/verify.sh and prepare-debs.sh: unpack_openmpi DEBS_DIR ROOT unpacks every .deb of DEBS_DIR
# into ROOT with dpkg -x (no install, no root needed) and points this shell at the Open MPI inside:
#   OPAL_PREFIX=ROOT/usr   Open MPI finds its helpers, MCA components and wrapper data relative to it
#   PATH, LD_LIBRARY_PATH  its binaries and libraries (and those of the packages beside it)
#   MPI_HOME, CMAKE_PREFIX_PATH  so that CMake's FindMPI takes ROOT/usr/bin/mpicxx
# dpkg -x runs no maintainer scripts, so the update-alternatives links (mpirun -> mpirun.openmpi, mpicxx -> ...)
# are made here.
unpack_openmpi() {
  local debs="$1" root="$2" deb tool arch
  mkdir -p "$root"
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$root" || return 1; done
  for tool in "$root"/usr/bin/*.openmpi; do
    [[ -e "$tool" ]] && ln -sf "$(basename "$tool")" "${tool%.openmpi}"
  done
  arch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
  export OPAL_PREFIX="$root/usr"
  export PATH="$root/usr/bin:$PATH"
  export LD_LIBRARY_PATH="$root/usr/lib/$arch/openmpi/lib:$root/usr/lib/$arch:$root/lib/$arch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export MPI_HOME="$root/usr"
  export CMAKE_PREFIX_PATH="$root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
}
