"""The S/N-based mass cut per redshift bin of the Planck mocks (results/tables/mass_cuts.csv)."""
from szmass.cosmology import make_cosmology
from szmass.healpix import read_healpix_map
from szmass.logs import configure
from szmass.mapstore import open_maps
from szmass.mocks import mass_cuts
from szmass.planck import read_psz2
from szmass.provenance import stamp_job
from szmass.tables import write_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
psz2 = read_psz2(sm.input.psz2)
cuts = mass_cuts(open_maps(sm.input.planck), read_healpix_map(sm.input.noise), z_edges=sm.params.z_edges,
                 noise_positions=(psz2["GLON"].to_numpy(), psz2["GLAT"].to_numpy()),
                 threshold=sm.params.threshold, cosmo=make_cosmology(sm.params.cosmology),
                 reso_arcmin=sm.params.reso_arcmin, fwhm_arcmin=sm.params.fwhm_arcmin)
write_table(cuts, sm.output[0])
log.info("mass cuts:\n%s", cuts.to_string())
stamp_job(sm)
