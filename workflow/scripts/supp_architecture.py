"""Supplementary Figure 3: the network drawn from its architecture (szmass.architecture; no TensorFlow)."""
from szmass.architecture import Architecture
from szmass.logs import configure
from szmass.plots import save_figure
from szmass.provenance import stamp_job
from szmass.supp_plots import architecture_diagram
from szmass.supplementary import layer_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
log = configure(sm.log)
arch = Architecture.from_mapping(sm.params.architecture)  # the network the workflow trains (training.architecture)
layers = layer_table(arch, side=sm.params.map_npix)
save_figure(architecture_diagram(layers, title=arch.name), sm.output[0])
log.info("%s: %d layers, %d parameters -> %s", arch.name, len(layers), int(layers["parameters"].sum()), sm.output[0])
stamp_job(sm)
