"""Supplementary Figures 5 (right), 6, 7 and 8 from the runs' and the models' predictions."""
import numpy as np
import pandas as pd

from szmass.logs import configure
from szmass.plots import save_figure
from szmass.provenance import stamp_job
from szmass.sbi import KDEPosterior
from szmass.supp_plots import bias_distributions, kde_figure, log_ratio_distributions, run_error_distributions
from szmass.supplementary import bias_samples, kde_density, run_errors

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
p = sm.params
edges = p.edges
zlabels = {k: f"{edges[k - 1]:g} < z <= {edges[k]:g}" for k in range(1, len(edges))}

errors = run_errors({int(b): pd.read_csv(path) for b, path in p.selections.items()})
save_figure(run_error_distributions(errors), sm.output.fig5)
log.info("Supp. Fig. 5: %d runs, %d validation maps -> %s", errors.groupby(["zbin", "run"]).ngroups, len(errors),
         sm.output.fig5)

tests = {ds: pd.read_csv(path) for ds, path in zip(p.datasets, sm.input.tests, strict=True)}
sky = pd.read_csv(sm.input.sky)
samples = {f"{ds} mocks": bias_samples(t, "log10_M_true") for ds, t in tests.items()}
labels = dict.fromkeys(samples, "$b_t$")
samples["sky"] = bias_samples(sky, "log10_MSZ")
labels["sky"] = "$b_P$"
if "log10_M_true" in sky:  # a synthetic sky: its truth is known
    samples["sky (truth)"] = bias_samples(sky, "log10_M_true")
    labels["sky (truth)"] = "$b_t$"
save_figure(bias_distributions(samples, labels, zlabels=zlabels), sm.output.fig6)

t = tests[p.sky_dataset]
posterior = KDEPosterior(t["log10_M_cnn"], t["log10_M_true"], bw_factor=p.bw_factor)
pad = 0.15
x = np.linspace(t["log10_M_cnn"].min() - pad, t["log10_M_cnn"].max() + pad, 150)
y = np.linspace(t["log10_M_true"].min() - pad, t["log10_M_true"].max() + pad, 150)
x0 = float(np.median(t["log10_M_cnn"]))  # the example slice: the median prediction
save_figure(kde_figure(x, y, kde_density(posterior, x, y), t, x0=x0, slice_grid=posterior.grid,
                       slice_pdf=posterior.pdf(x0)[0]), sm.output.fig7)  # fmt: skip
log.info("Supp. Fig. 7: KDE of %d %s test maps, slice at log10 M_CNN = %.3f", len(t), p.sky_dataset, x0)

save_figure(log_ratio_distributions({f"{ds} mocks": t for ds, t in tests.items()}, zlabels=zlabels), sm.output.fig8)
log.info("-> %s, %s, %s", sm.output.fig6, sm.output.fig7, sm.output.fig8)
stamp_job(sm)
