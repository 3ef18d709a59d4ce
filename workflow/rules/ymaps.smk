# Stages 2-3: y-maps of every selected halo along 27 lines of sight, observed with the instrument
# (beam + regridding), one job per (sim, region, chunk of snapshots), gathered into results/maps/clean.zarr.


rule project_maps:
    """Clean mock maps of all halos of one region's chunk of snapshots (every line of sight), with Y500_cyl
    and Y500_sph: a directory of part stores, one per snapshot."""
    input:
        # The snapshots it reads are inputs of select_halos, which made this halo table: a changed snapshot reruns
        # both jobs. Listing them again here would add ~10,000 files to the full-scale DAG (and ~30% to its time).
        halos="results/halos/parts/{sim}/{region}_c{chunk}.csv",
    output:
        **({"hires": directory("results/maps/hires/{sim}/{region}_c{chunk}")} if SAVE_HIRES else {}),
        maps=directory("results/maps/parts/{sim}/{region}_c{chunk}"),
        # the high-resolution maps only on request (ymaps.save_hires): for inspection and results/maps/hires.zarr
    log:
        "logs/project_maps/{sim}/{region}_c{chunk}.log",
    benchmark:
        "benchmarks/out/project_maps/{sim}/{region}_c{chunk}.tsv"
    conda:
        "../../envs/maps.yaml"
    threads: 2
    resources:
        mem_mb=per_attempt(4000),
        # ~8 s per line of sight and halo of 4M particles on 2 cores (docs/benchmarks.md), a few halos per snapshot
        runtime=per_attempt(lambda w: 30 + 10 * len(chunk_snapshots(w))),
    params:
        snapshots=chunk_snapshot_paths,
        ymaps=config["ymaps"],
        instrument=config["instrument"],
        cosmology=config["cosmology"],
    script:
        "../scripts/project_maps.py"


rule clean_maps:
    """The clean mock data set: every projection job's maps in one zarr store, chunked by halo."""
    input:
        [f"results/maps/parts/{sim}/{r:04d}_c{c}" for sim in SIMS for r, c in region_chunks(sim)],
    output:
        directory("results/maps/clean.zarr"),
    log:
        "logs/clean_maps.log",
    benchmark:
        "benchmarks/out/clean_maps.tsv"
    conda:
        "../../envs/maps.yaml"
    resources:
        mem_mb=per_attempt(8000),
    script:
        "../scripts/gather_maps.py"


rule hires_maps:
    """The high-resolution data set (ymaps.save_hires): every clean map's high-resolution map averaged onto the
    network's input grid with no beam, with the clean store's coordinates (szmass.hiresmaps); the cross-model
    study trains on it with studies.cross_model.dataset: hires, as the paper trained on its high-resolution maps."""
    input:
        clean="results/maps/clean.zarr",
        hires=(
            [f"results/maps/hires/{sim}/{r:04d}_c{c}" for sim in SIMS for r, c in region_chunks(sim)]
            if SAVE_HIRES
            else []
        ),
    output:
        directory("results/maps/hires.zarr"),
    log:
        "logs/hires_maps.log",
    benchmark:
        "benchmarks/out/hires_maps.tsv"
    conda:
        "../../envs/maps.yaml"
    resources:
        mem_mb=per_attempt(8000),
    script:
        "../scripts/hires_maps.py"
