"""Figures 1-3 of the paper from the test-set predictions of the mocks and the sky's predictions."""
import numpy as np
import pandas as pd

from szmass.cosmology import make_cosmology
from szmass.logs import configure
from szmass.plots import figure1, figure2, figure3, save_figure
from szmass.provenance import stamp_job
from szmass.scaling import ALPHA_PLANCK, ALPHA_THE300, ym_bias

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
tables = {ds: pd.read_csv(path) for ds, path in zip(p.datasets, sm.input.selected)}
sky = pd.read_csv(sm.input.sky).dropna(subset=["log10_MSZ"])
save_figure(figure1(tables, n_points=p.points, seed=p.seed, edges=p.edges), sm.output.figure1)
save_figure(figure2(sky, seed=p.seed, edges=p.edges), sm.output.figure2)
# the bias a Y-M relation of another slope predicts against PSZ2's masses, at the sky's median redshift
cosmo = make_cosmology(p.cosmology)
m_sz = np.logspace(sky["log10_MSZ"].min(), sky["log10_MSZ"].max(), 100)
z = np.full_like(m_sz, float(sky["redshift"].median()))
curves = {f"Y-M slope {a:g}": (m_sz, ym_bias(m_sz, z, cosmo, alpha=a)) for a in (ALPHA_THE300, ALPHA_PLANCK)}
save_figure(figure3(sky, curves), sm.output.figure3)
log.info("-> %s, %s, %s", sm.output.figure1, sm.output.figure2, sm.output.figure3)
stamp_job(sm)
