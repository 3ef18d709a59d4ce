# Stage 1: simulations in. Synthetic regions are written in THE THREE HUNDRED's formats, so the
# real readers run on them; real snapshots are found through the config's path templates.


rule simulate:
    """One synthetic region at one snapshot: a GADGET snapshot and its AHF halo catalogue."""
    output:
        snapshot=layout.synthetic_snapshot_pattern(SYNTH_FORMAT),
        ahf=layout.SYNTHETIC_AHF_PATTERN,
    params:
        synthetic=lambda w: as_json(SIMS[w.sim].get("synthetic", {})),
        redshift=lambda w: layout.snapshots(SIMS[w.sim])[int(w.snapshot)],
        seed=lambda w: layout.region_seed(config["seed"], w.sim, int(w.region)),
        cosmology=as_json(config["cosmology"]),
        fmt=SYNTH_FORMAT,
    resources:
        mem_mb=8000,
        runtime=60,
    log:
        "logs/simulate/{sim}/{region}_{snapshot}.log",
    benchmark:
        "benchmarks/out/simulate/{sim}/{region}_{snapshot}.tsv"
    script:
        "../scripts/simulate.py"


def select_halos_inputs(w):
    c = SIMS[w.sim]
    pairs = sim_pairs(w.sim)
    return {
        "ahf": [ahf_file(w.sim, r, s) for r, s in pairs],
        "snapshots": [snapshot_file(w.sim, r, s) for r, s in pairs],
    }


rule select_halos:
    """The halo table of one simulation: M500 > 1e14 h^-1 Msun, uncontaminated, 0 < z <= 1."""
    input:
        unpack(select_halos_inputs),
    output:
        "results/halos/{sim}.csv",
    params:
        pairs=lambda w: sim_pairs(w.sim),
        redshifts=lambda w: layout.snapshots(SIMS[w.sim]),
        model=lambda w: SIMS[w.sim].get("model") or SIMS[w.sim].get("synthetic", {}).get("gas_model", "gadget_x"),
        selection=as_json(config["halo_selection"]),
        cosmology=as_json(config["cosmology"]),
    log:
        "logs/select_halos/{sim}.log",
    script:
        "../scripts/select_halos.py"
