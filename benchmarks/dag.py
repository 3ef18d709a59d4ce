"""Time to build the workflow's DAG and its job count per rule, for a config (default: config/scale.yaml).

    .venv/bin/python benchmarks/dag.py [CONFIG] [--repeat N]

Runs `snakemake -n` in a scratch working directory (nothing exists there, so every job is planned) and
prints, per run, the wall time, the CPU time of snakemake (user + system; what the machine's load does not
inflate) and the load average before it, then the job count per rule. Target (issue 8): under 20 s at full
scale. The `-n` output lists every job, as a user sees it; its job stats table gives the counts.
"""

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("config", nargs="?", type=Path, default=REPO / "config" / "scale.yaml")
parser.add_argument("--repeat", type=int, default=1, help="runs (each in a fresh directory)")
args = parser.parse_args()
config = args.config.resolve()
snakemake = str(Path(sys.executable).with_name("snakemake"))
for run in range(args.repeat):
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([snakemake, "--snakefile", str(REPO / "Snakefile"), "--directory", work, "-n",
                               "--configfile", str(config)], check=False, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(proc.stdout[-5000:] + proc.stderr[-5000:])
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    table = proc.stdout[proc.stdout.rindex("Job stats:"):]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", table, re.MULTILINE))
    print(f"config {config.name}: DAG of {counts.pop('total')} jobs built in {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"(load average {load:.1f} before)")
for rule, n in sorted(counts.items(), key=lambda kv: -int(kv[1])):
    print(f"  {rule:24s} {n:>7s}")
