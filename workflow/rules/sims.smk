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
        seed=lambda w: layout.derive_seed(config["seed"], w.sim, int(w.region)),
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


def existing_snapshot(path):
    """A snapshot path as a Snakemake input: multi-file snapshots are given by their first file."""
    import os

    return path if os.path.exists(path) or not os.path.exists(path + ".0") else path + ".0"


rule select_halos:
    """Halos of one snapshot: M500 > 1e14 h^-1 Msun, uncontaminated, 0 < z <= 1."""
    input:
        ahf=lambda w: ahf_file(w.sim, w.region, w.snapshot),
        snapshot=lambda w: existing_snapshot(snapshot_file(w.sim, w.region, w.snapshot)),
    output:
        "results/halos/parts/{sim}/{region}_{snapshot}.csv",
    params:
        snapshot=lambda w: snapshot_file(w.sim, w.region, w.snapshot),
        redshift=lambda w: layout.snapshots(SIMS[w.sim])[int(w.snapshot)],
        model=lambda w: sim_model(w.sim),
        selection=as_json(config["halo_selection"]),
        cosmology=as_json(config["cosmology"]),
    log:
        "logs/select_halos/{sim}/{region}_{snapshot}.log",
    script:
        "../scripts/select_halos.py"


rule halo_table:
    """The halo table of one simulation (results/halos/{sim}.csv), in region and snapshot order."""
    input:
        lambda w: [f"results/halos/parts/{w.sim}/{r:04d}_{s:03d}.csv" for r, s in sim_pairs(w.sim)],
    output:
        "results/halos/{sim}.csv",
    log:
        "logs/halo_table/{sim}.log",
    script:
        "../scripts/concat_tables.py"
