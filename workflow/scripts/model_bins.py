"""What `szmass predict` reads next to a data set's selected models: the redshift-bin edges, the mass the
networks return and the test
set's (prediction, truth) pairs with the KDE settings of the posteriors."""
import os

import pandas as pd

from szmass.logs import configure
from szmass.provenance import stamp_job
from szmass.rundir import write_bin_edges
from szmass.sbi import write_posterior_pairs

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
write_bin_edges(os.path.dirname(sm.output.edges), sm.params.edges, sm.params.target_mass)
write_posterior_pairs(sm.output.posterior, pd.read_csv(sm.input.tests), bw_factor=sm.params.bw_factor,
                      min_test_maps=sm.params.min_test_maps)
log.info("redshift bins %s and posterior pairs -> %s, %s", sm.params.edges, sm.output.edges, sm.output.posterior)
stamp_job(sm)
