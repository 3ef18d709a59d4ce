"""A synthetic sky: noise + simulated halos of the sky's models' test sets injected at the PSZ2 positions, and masks."""
from szmass.healpix import write_healpix_map
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.planck import read_psz2
from szmass.provenance import stamp_job
from szmass.splits import read_mass_cuts
from szmass.synthsky import synthetic_sky, unseen_maps
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
clean = open_maps(sm.input.clean)
cuts = sm.input.get("cuts")  # by name: the Planck mocks' S/N mass cuts, when the sky's models train above them
m500_cuts = None
if cuts:
    by_bin = read_mass_cuts(cuts)
    m500_cuts = [by_bin[k] for k in range(1, len(p.z_edges))]
eligible = unseen_maps(clean, open_maps(sm.input.trained), z_edges=p.z_edges, test_seeds=p.test_seeds,
                       identity=p.identity, m500_cuts=m500_cuts, fractions=p.fractions)
log.info("%d of %d clean maps belong to test-set clusters of the sky's models", eligible.sum(), eligible.size)
sky, mask, truth = synthetic_sky(
    read_psz2(sm.input.psz2), clean, eligible=eligible, nside=p.nside, seed=p.seed,
    hydrostatic_bias=p.hydrostatic_bias, reso_arcmin=p.reso_arcmin, z_edges=tuple(p.z_edges),
    galactic_cut_deg=p.galactic_cut_deg, point_source_density_deg2=p.point_source_density_deg2,
    point_source_radius_arcmin=p.point_source_radius_arcmin,
)
write_healpix_map(sm.output.sky, sky)
write_healpix_map(sm.output.mask, mask)
write_table(truth, sm.output.truth)
log.info("%d clusters injected; masked sky fraction %.3f", len(truth), 1 - mask.mean())
stamp_job(sm)
