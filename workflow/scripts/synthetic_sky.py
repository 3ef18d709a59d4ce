"""A synthetic sky: noise + simulated halos injected at the PSZ2 positions, and synthetic masks."""
from szmass.atomic import atomic_path
from szmass.healpix import write_healpix_map
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.planck import read_psz2
from szmass.provenance import stamp_job
from szmass.synthsky import synthetic_sky

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
sky, mask, truth = synthetic_sky(
    read_psz2(sm.input.psz2), open_maps(sm.input.clean), nside=p.nside, seed=p.seed,
    hydrostatic_bias=p.hydrostatic_bias, reso_arcmin=p.reso_arcmin, z_edges=tuple(p.z_edges),
    galactic_cut_deg=p.galactic_cut_deg, point_source_density_deg2=p.point_source_density_deg2,
    point_source_radius_arcmin=p.point_source_radius_arcmin,
)
write_healpix_map(sm.output.sky, sky)
write_healpix_map(sm.output.mask, mask)
with atomic_path(sm.output.truth) as tmp:
    truth.to_csv(tmp, index=False, float_format="%.9g")
log.info("%d clusters injected; masked sky fraction %.3f", len(truth), 1 - mask.mean())
stamp_job(sm)
