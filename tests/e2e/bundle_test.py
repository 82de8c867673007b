"""The air-gapped bundle (cluster/bundle/make-bundle.sh, what `make bundle` runs): built from this build's binary,
unpacked into an empty folder, its checksum manifest verified, then the demo run from it with the build tree out of
reach and this machine made bare of what the bundle carries. In a private mount namespace the test hides the source
and build trees, the system's Open MPI, PMIx, UCX and CUDA folders, and every system copy of a library the bundle
holds in lib/ (bind-mounting empty files and folders over them), so that only the bundle can provide them. The
demo's token ids must equal those of the same command run from the build tree.
Usage: bundle_test.py TESSERA_BIN SOURCE_DIR MODEL. Exits 77 (Skipped) without root/unshare or the model."""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from process_group import run_group  # noqa: E402

ARGS = ["generate", "--config", "configs/cpu-demo.yaml", "--prompt", "The capital of France is", "--max-tokens", "8",
        "--ignore-eos", "--show-ids"]
MASKED_DIRS = ["/usr/lib/x86_64-linux-gnu/openmpi", "/usr/lib/x86_64-linux-gnu/pmix2", "/usr/lib/x86_64-linux-gnu/ucx",
               "/usr/share/openmpi", "/etc/openmpi"] + glob.glob("/usr/local/cuda*")


def ids(text):
    m = re.findall(r"^ids: (.*)$", text, re.M)
    return m[-1].strip() if m else None


def main():
    binary, source, model = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("SKIP: needs root and unshare for the private mount namespace")
        return 77
    if not os.path.isfile(model):
        print(f"SKIP: default model not found at {model}")
        return 77
    mpirun = ["mpirun", "--oversubscribe", "--bind-to", "none", "--allow-run-as-root", "-np", "6"]
    ref = run_group(mpirun + [binary] + ARGS, timeout=300, cwd=source)
    reference = ids(ref.stdout)
    if ref.returncode != 0 or not reference:
        print(f"FAIL: reference run from the build tree failed:\n{ref.stdout}\n{ref.stderr}")
        return 1

    with tempfile.TemporaryDirectory(prefix="tessera-bundle-") as tmp:
        out = os.path.join(tmp, "out")
        r = subprocess.run(["bash", os.path.join(source, "cluster", "bundle", "make-bundle.sh"), binary, out],
                           capture_output=True, text=True, timeout=600, env=dict(os.environ, BUNDLE_COMPRESS="zst"))
        print(r.stdout, r.stderr)
        tarballs = glob.glob(os.path.join(out, "tessera-*.tar.zst"))
        if r.returncode != 0 or len(tarballs) != 1:
            print("FAIL: make-bundle.sh did not write one tarball")
            return 1
        empty = os.path.join(tmp, "unpacked")
        os.makedirs(empty)
        subprocess.run(f"zstd -dc {shlex.quote(tarballs[0])} | tar -xf - -C {shlex.quote(empty)}", shell=True,
                       check=True, timeout=300)
        os.remove(tarballs[0])
        (bundle,) = glob.glob(os.path.join(empty, "tessera-*"))
        check = subprocess.run(["sha256sum", "-c", "--quiet", "MANIFEST.sha256"], cwd=bundle, capture_output=True,
                               text=True, timeout=300)
        if check.returncode != 0:
            print("FAIL: the manifest does not verify:\n" + check.stdout + check.stderr)
            return 1
        print("ok: MANIFEST.sha256 verifies")
        for needed in ("libexec/tessera", "bin/tessera", "bin/mpirun", "bin/orted", "env.sh", "configs/cpu-demo.yaml",
                       "cluster/slurm/launch-ranks.sh", "lib/libopenblas.so.0", "lib/libmpi.so.40",
                       "lib/libyaml-cpp.so.0.7", "lib/libucp.so.0", "lib/libpmix.so.2"):
            if not os.path.exists(os.path.join(bundle, needed)):
                print(f"FAIL: the bundle lacks {needed}")
                return 1

        # Hide what a bare node lacks: every system copy of a bundled library, the MPI/UCX/CUDA folders, the trees.
        masks = [d for d in MASKED_DIRS if os.path.isdir(d)] + [source]
        if not os.path.dirname(binary).startswith(source + os.sep):
            masks.append(os.path.dirname(binary))
        files = []
        for lib in os.listdir(os.path.join(bundle, "lib")):
            for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/local/lib"):
                p = os.path.join(d, lib)
                real = os.path.realpath(p)
                if os.path.isfile(p) and not any(real.startswith(m + os.sep) for m in masks):
                    files.append(real)
        script = ["set -e", "empty=$(mktemp -d)", "touch $empty/file"]
        script += [f"mount --bind $empty {shlex.quote(d)}" for d in masks]
        # mount itself loads some of these libraries (libpcre2...): take them from the bundle while masking.
        script += [f"export LD_LIBRARY_PATH={shlex.quote(os.path.join(bundle, 'lib'))}"]
        script += [f"mount --bind $empty/file {shlex.quote(f)}" for f in sorted(set(files))]
        script += ["unset LD_LIBRARY_PATH"]
        script += [# Proof the hiding works: the system's own mpirun can no longer start.
                   "if /usr/bin/orterun --version >/dev/null 2>&1; then echo 'system Open MPI still usable'; exit 9; fi",
                   f"cd {shlex.quote(bundle)}", "source env.sh",
                   "ldd libexec/tessera",
                   "exec mpirun --oversubscribe --bind-to none --allow-run-as-root -np 6 bin/tessera "
                   + " ".join(shlex.quote(a) for a in ARGS)]
        run = run_group(["unshare", "--mount", "--propagation", "private", "bash", "-c", "\n".join(script)],
                        timeout=300, cwd="/")
        print(run.stdout[-4000:])
        print(run.stderr[-4000:], file=sys.stderr)
        if run.returncode != 0:
            print(f"FAIL: the demo from the bundle exited {run.returncode} ({len(files)} system libraries hidden)")
            return 1
        outside = [l for l in run.stdout.splitlines() if "=>" in l and bundle not in l
                   and not re.search(r"lib(c|m|dl|pthread|rt)\.so", l)]
        if outside:
            print("FAIL: libraries resolved outside the bundle:\n" + "\n".join(outside))
            return 1
        got = ids(run.stdout)
        if got != reference:
            print(f"FAIL: the bundle's demo gave {got!r}, the build tree's {reference!r}")
            return 1
    print(f"PASS: the unpacked bundle runs the demo with the build tree and {len(files)} system libraries hidden")
    return 0


if __name__ == "__main__":
    sys.exit(main())
