#!/usr/bin/env bash
# bin/tessera of the bundle: sets the bundle's environment, then runs the real binary (libexec/tessera).
here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
# shellcheck source=/dev/null
source "$here/env.sh"
exec "$here/libexec/tessera" "$@"
