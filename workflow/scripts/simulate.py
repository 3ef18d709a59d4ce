"""Write one synthetic region at one snapshot (GADGET snapshot + AHF catalogue)."""
import json

from szmass.cosmology import make_cosmology
from szmass.logs import configure
from szmass.synth import SynthConfig, generate_region_snapshot

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
cfg = SynthConfig.from_mapping(json.loads(sm.params.synthetic))
halos = generate_region_snapshot(
    cfg,
    make_cosmology(json.loads(sm.params.cosmology)),
    region=int(sm.wildcards.region),
    snapshot=int(sm.wildcards.snapshot),
    redshift=float(sm.params.redshift),
    seed=int(sm.params.seed),
    snapshot_path=sm.output.snapshot,
    ahf_path=sm.output.ahf,
    fmt=sm.params.fmt,
)
log.info("region %s snapshot %s: %d halos written", sm.wildcards.region, sm.wildcards.snapshot, len(halos))
