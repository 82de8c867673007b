"""cluster/k8s/mpijob.yaml parses as YAML and is shaped as the recipe says (not deployed here): a Kubeflow MPIJob
with a launcher running mpirun on the bundle's tessera and workers that request GPUs, whose slots times replicas is
the layout's world size in the config it names, and a Service for rank 0's port. Also checks cluster/env/*.env:
every setting line carries a comment saying why. Usage: k8s_recipe_test.py SOURCE_DIR"""
import os
import re
import sys

import yaml

failures = []


def check(ok, what):
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def main():
    source = sys.argv[1]
    with open(os.path.join(source, "cluster", "k8s", "mpijob.yaml")) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    kinds = {d["kind"]: d for d in docs}
    check(set(kinds) == {"MPIJob", "Service"}, f"an MPIJob and a Service ({sorted(kinds)})")
    job = kinds["MPIJob"]
    check(job["apiVersion"] == "kubeflow.org/v2beta1", "Kubeflow MPI Operator v2beta1")
    specs = job["spec"]["mpiReplicaSpecs"]
    launcher = specs["Launcher"]["template"]["spec"]["containers"][0]
    worker = specs["Worker"]["template"]["spec"]["containers"][0]
    args = " ".join(launcher["args"])
    check("mpirun" in args and "/opt/tessera/bin/tessera serve" in args, "the launcher runs mpirun on tessera serve")
    gpus = worker["resources"]["limits"]["nvidia.com/gpu"]
    slots = job["spec"]["slotsPerWorker"]
    world = slots * specs["Worker"]["replicas"]
    check(gpus == slots, "one rank per GPU (slots = GPUs per worker)")
    np_arg = int(re.search(r"-np (\d+)", args).group(1))
    config = re.search(r"configs/(\S+\.yaml)", args).group(1)
    with open(os.path.join(source, "configs", config)) as f:
        par = yaml.safe_load(f)["parallel"]
    check(np_arg == world == par["tp"] * par["pp"], f"-np {np_arg} = workers x slots {world} = tp*pp of {config}")
    port = re.search(r"--port (\d+)", args).group(1)
    svc = kinds["Service"]
    check(str(svc["spec"]["ports"][0]["targetPort"]) == port, f"the Service targets rank 0's port {port}")
    sel = svc["spec"]["selector"]
    check(sel.get("training.kubeflow.org/job-name") == job["metadata"]["name"]
          and sel.get("training.kubeflow.org/job-role") == "worker"
          and sel.get("training.kubeflow.org/replica-index") == "0", "the Service selects worker 0 of this job")

    for env in ("infiniband.env", "tcp.env"):
        with open(os.path.join(source, "cluster", "env", env)) as f:
            settings = [l for l in f if re.match(r"\s*(# )?export ", l) and not l.strip().startswith("# ---")]
        uncommented = [l.strip() for l in settings if "#" not in l.split("export", 1)[1]]
        check(settings and not uncommented, f"{env}: every setting says why ({len(settings)} settings) {uncommented}")
    if failures:
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
