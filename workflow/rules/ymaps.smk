# Stages 2-3: y-maps of every selected halo along 27 lines of sight, observed with the instrument
# (beam + regridding), one job per (sim, region, snapshot), gathered into results/maps/clean.zarr.


rule project_maps:
    """Clean mock maps of all halos of one snapshot (every line of sight), with Y500_cyl and Y500_sph."""
    input:
        halos="results/halos/parts/{sim}/{region}_{snapshot}.csv",
        snapshot=lambda w: existing_snapshot(snapshot_file(w.sim, w.region, w.snapshot)),
    output:
        maps=directory("results/maps/parts/{sim}/{region}_{snapshot}.zarr"),
        # the high-resolution maps only on request (ymaps.save_hires), for inspection
        **({"hires": directory("results/maps/hires/{sim}/{region}_{snapshot}.zarr")} if SAVE_HIRES else {}),
    params:
        snapshot=lambda w: snapshot_file(w.sim, w.region, w.snapshot),
        ymaps=as_json(config["ymaps"]),
        instrument=as_json(config["instrument"]),
        cosmology=as_json(config["cosmology"]),
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        "logs/project_maps/{sim}/{region}_{snapshot}.log",
    benchmark:
        "benchmarks/out/project_maps/{sim}/{region}_{snapshot}.tsv"
    script:
        "../scripts/project_maps.py"


rule clean_maps:
    """The clean mock data set: every projection job's maps in one zarr store, chunked by halo."""
    input:
        [f"results/maps/parts/{sim}/{r:04d}_{s:03d}.zarr" for sim in SIMS for r, s in sim_pairs(sim)],
    output:
        directory("results/maps/clean.zarr"),
    resources:
        mem_mb=8000,
    log:
        "logs/clean_maps.log",
    script:
        "../scripts/gather_maps.py"
