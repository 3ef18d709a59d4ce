"""Time to build the workflow's DAG and its job count per rule, for a config (default: config/scale.yaml).

    .venv/bin/python benchmarks/dag.py [CONFIG]

Runs `snakemake -n --quiet rules` in a scratch working directory (nothing exists there, so every job
is planned) and prints the wall time and the per-rule job counts. Target (issue 8): under 20 s at full scale.
"""

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
config = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "config" / "scale.yaml").resolve()
snakemake = str(Path(sys.executable).with_name("snakemake"))
with tempfile.TemporaryDirectory() as work:
    t0 = time.perf_counter()
    proc = subprocess.run([snakemake, "--snakefile", str(REPO / "Snakefile"), "--directory", work, "-n",
                           "--quiet", "rules", "--configfile", str(config)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
if proc.returncode:
    sys.exit(proc.stdout + proc.stderr)
counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.M))
print(f"config {config.name}: DAG of {counts.pop('total')} jobs built in {wall:.1f} s")
for rule, n in sorted(counts.items(), key=lambda kv: -int(kv[1])):
    print(f"  {rule:20s} {n:>7s}")
