"""Write one synthetic region at each of its snapshots (GADGET snapshots + AHF catalogues), one job per region."""
from szmass.cosmology import make_cosmology
from szmass.logs import configure
from szmass.synth import SynthConfig, generate_region_snapshot

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
cfg = SynthConfig.from_mapping(sm.params.synthetic)
cosmo = make_cosmology(sm.params.cosmology)
redshifts = sm.params.redshifts  # [[snapshot, redshift], ...] in the order of the outputs
for (snapshot, redshift), snapshot_path, ahf_path in zip(redshifts, sm.output.snapshots, sm.output.ahf, strict=True):
    if f"snap_{snapshot:03d}" not in snapshot_path or f"snap_{snapshot:03d}." not in ahf_path:
        raise ValueError(f"simulate: outputs {snapshot_path}, {ahf_path} are not those of snapshot {snapshot}")
    halos = generate_region_snapshot(
        cfg, cosmo, region=int(sm.wildcards.region), snapshot=int(snapshot), redshift=float(redshift),
        seed=int(sm.params.seed), snapshot_path=snapshot_path, ahf_path=ahf_path, fmt=sm.params.fmt,
    )
    log.info("region %s snapshot %s: %d halos written", sm.wildcards.region, snapshot, len(halos))
