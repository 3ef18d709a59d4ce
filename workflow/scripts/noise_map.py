"""Realise the full-sky noise map from the configured noise products or the default MILCA-calibrated model."""
from szmass import noise
from szmass.healpix import write_healpix_map
from szmass.logs import configure
from szmass.provenance import stamp_job

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
nside = int(sm.wildcards.nside)
if sm.params.std_map and sm.params.noise_cl:
    model = noise.noise_model_from_files(sm.params.std_map, sm.params.noise_cl, nside)
else:
    model = noise.default_noise_model(nside)
write_healpix_map(sm.output[0], noise.realise(model, sm.params.seed))
log.info("noise realisation at nside %d (lmax %d) -> %s", nside, model.lmax, sm.output[0])
stamp_job(sm)
