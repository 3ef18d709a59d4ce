# Stage 1: simulations in. Synthetic regions are written in THE THREE HUNDRED's layout (one job per region,
# every snapshot), so the real readers run on them; real snapshots are found through the config's path
# templates. Halos are selected per region and chunk of snapshots (sims.<name>.snapshots_per_job; default
# all of them): a few hundred jobs at full scale instead of one per (region, snapshot).

CHUNKS = {sim: layout.snapshot_chunks(c) for sim, c in SIMS.items()}
"""sim -> its snapshots cut into the chunks of one job each (chunk c of region r: part {r:04d}_c{c})."""
REDSHIFTS = {sim: layout.snapshots(c) for sim, c in SIMS.items()}


wildcard_constraints:
    chunk="[0-9]+",


# One `simulate` rule per distinct snapshot list of the synthetic sims (one rule in the usual case of sims
# sharing their snapshots, e.g. the gas models of the cross-model study): a rule's output list is fixed,
# and each region's job writes all its snapshots.
_SYNTH_GROUPS = {}
for _sim, _c in SIMS.items():
    if _c["source"] == "synthetic":
        _SYNTH_GROUPS.setdefault(tuple(REDSHIFTS[_sim].items()), []).append(_sim)

for _i, (_snaps, _sims) in enumerate(_SYNTH_GROUPS.items()):

    rule:
        """One synthetic region at every snapshot: GADGET snapshots and their AHF halo catalogues."""
        name:
            "simulate" if _i == 0 else f"simulate_{_i + 1}"
        output:
            snapshots=expand(
                layout.synthetic_snapshot_pattern(SYNTH_FORMAT),
                snapshot=[f"{s:03d}" for s, _ in _snaps],
                allow_missing=True,
            ),
            ahf=expand(layout.SYNTHETIC_AHF_PATTERN, snapshot=[f"{s:03d}" for s, _ in _snaps], allow_missing=True),
        log:
            "logs/simulate/{sim}/{region}.log",
        benchmark:
            "benchmarks/out/simulate/{sim}/{region}.tsv"
        wildcard_constraints:
            sim="|".join(_sims),
        conda:
            "../../envs/maps.yaml"
        resources:
            mem_mb=per_attempt(8000),
            runtime=per_attempt(30 + 3 * len(_snaps)),
        params:
            synthetic=lambda w: SIMS[w.sim].get("synthetic", {}),
            redshifts=[[s, z] for s, z in _snaps],  # [[snapshot, redshift], ...] in the outputs' order
            seed=lambda w: layout.derive_seed(config["seed"], w.sim, int(w.region)),
            cosmology=config["cosmology"],
            fmt=SYNTH_FORMAT,
        script:
            "../scripts/simulate.py"


rule select_halos:
    """Halos of one region's chunk of snapshots: M500 > 1e14 h^-1 Msun, uncontaminated, 0 < z <= 1."""
    input:
        unpack(chunk_inputs),
    output:
        "results/halos/parts/{sim}/{region}_c{chunk}.csv",
    log:
        "logs/select_halos/{sim}/{region}_c{chunk}.log",
    benchmark:
        "benchmarks/out/select_halos/{sim}/{region}_c{chunk}.tsv"
    conda:
        "../../envs/maps.yaml"
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(lambda w: 10 + 2 * len(chunk_snapshots(w))),
    params:
        snapshots=lambda w: [
            {
                "snapshot": s,
                "path": snapshot_file(w.sim, w.region, s),
                "ahf": ahf_file(w.sim, w.region, s),
                "redshift": REDSHIFTS[w.sim][s],
            }
            for s in chunk_snapshots(w)
        ],
        model=lambda w: sim_model(w.sim),
        selection=config["halo_selection"],
        cosmology=config["cosmology"],
    script:
        "../scripts/select_halos.py"


rule halo_table:
    """The halo table of one simulation (results/halos/{sim}.csv), in region and snapshot order; an error
    naming the cuts when the selection kept no halo."""
    input:
        lambda w: [f"results/halos/parts/{w.sim}/{r:04d}_c{c}.csv" for r, c in region_chunks(w.sim)],
    output:
        "results/halos/{sim}.csv",
    log:
        "logs/halo_table/{sim}.log",
    conda:
        "../../envs/maps.yaml"
    params:
        selection=config["halo_selection"],
    script:
        "../scripts/concat_tables.py"
