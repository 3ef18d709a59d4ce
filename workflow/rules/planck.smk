# Stages 4-5: Planck noise and mocks; the sky (the real Planck y-map, or a synthetic sky with known
# truth when none is configured) cut out at every PSZ2 cluster, with the Golden-sample flag.

from szmass.data import PSZ2_CATALOGUE

PLANCK = config["planck"]
REAL_SKY = bool(PLANCK["ymap"])
# The PSZ2 catalogue: the configured file (only ever read), else a download when psz2_url is set, else the
# copy shipped with szmass. The download rule exists only when nothing else is configured, so no rule can
# ever overwrite a user's catalogue.
if PLANCK["psz2_catalogue"]:
    PSZ2 = PLANCK["psz2_catalogue"]
elif PLANCK["psz2_url"]:
    PSZ2 = "resources/planck/HFI_PCCS_SZ-union_R2.08.fits"

    rule download_psz2:
        """The PSZ2 union catalogue from psz2_url, checked against psz2_sha256 (a local job: compute nodes often
        have no internet)."""
        output:
            PSZ2,
        log:
            "logs/download_psz2.log",
        localrule: True
        conda:
            "../../envs/maps.yaml"
        params:
            url=PLANCK["psz2_url"],
            sha256=PLANCK["psz2_sha256"],
        script:
            "../scripts/download.py"

else:
    PSZ2 = str(PSZ2_CATALOGUE)


rule noise_map:
    """A full-sky Planck-like noise realisation (HEALPix) from the real noise products or the default model."""
    output:
        "resources/planck/noise_nside{nside}.fits",
    log:
        "logs/noise_map/nside{nside}.log",
    benchmark:
        "benchmarks/out/noise_map/nside{nside}.tsv"
    conda:
        "../../envs/maps.yaml"
    resources:
        mem_mb=per_attempt(6000),
    params:
        seed=derive_seed(config["seed"], "noise", "mocks"),
        std_map=PLANCK["noise_std_map"] or "",
        noise_cl=PLANCK["noise_cl"] or "",
    script:
        "../scripts/noise_map.py"


NOISE_MAP = f"resources/planck/noise_nside{PLANCK['nside']}.fits"


rule planck_mocks:
    """Planck mocks: each clean map plus a noise cutout at a random PSZ2 position."""
    input:
        clean="results/maps/clean.zarr",
        noise=NOISE_MAP,
        psz2=PSZ2,
    output:
        directory("results/maps/planck.zarr"),
    log:
        "logs/planck_mocks.log",
    benchmark:
        "benchmarks/out/planck_mocks.tsv"
    conda:
        "../../envs/maps.yaml"
    resources:
        mem_mb=per_attempt(8000),
    params:
        seed=derive_seed(config["seed"], "planck_mocks"),
        reso_arcmin=config["instrument"]["pixel_arcmin"],
    script:
        "../scripts/planck_mocks.py"


rule mass_cuts:
    """The mass cut per redshift bin from the S/N of the Planck mocks (PSZ2 threshold)."""
    input:
        planck="results/maps/planck.zarr",
        noise=NOISE_MAP,
        psz2=PSZ2,
    output:
        report("results/tables/mass_cuts.csv", category="Tables", caption="../report/mass_cuts.rst"),
    log:
        "logs/mass_cuts.log",
    benchmark:
        "benchmarks/out/mass_cuts.tsv"
    conda:
        "../../envs/maps.yaml"
    params:
        threshold=PLANCK["snr_threshold"],
        z_edges=config["training"]["redshift_edges"],
        cosmology=config["cosmology"],
        reso_arcmin=config["instrument"]["pixel_arcmin"],
        fwhm_arcmin=config["instrument"]["fwhm_arcmin"],
    script:
        "../scripts/mass_cuts.py"


rule synthetic_sky:
    """A synthetic sky: noise plus a halo that the sky's models never trained on injected at every PSZ2 cluster,
    and synthetic masks."""
    input:
        unpack(synthetic_sky_inputs),
    output:
        sky="resources/sky/synthetic_sky.fits",
        mask="resources/sky/synthetic_mask.fits",
        truth="results/sky/truth.csv",
    log:
        "logs/synthetic_sky.log",
    benchmark:
        "benchmarks/out/synthetic_sky.tsv"
    conda:
        "../../envs/maps.yaml"
    resources:
        mem_mb=per_attempt(8000),
    params:
        seed=derive_seed(config["seed"], "synthetic_sky"),
        nside=PLANCK["nside"],
        hydrostatic_bias=PLANCK["hydrostatic_bias"],
        reso_arcmin=config["instrument"]["pixel_arcmin"],
        z_edges=config["training"]["redshift_edges"],
        test_seeds=bin_test_seeds,
        identity=config["training"]["split_identity"],
        fractions=config["training"]["split_fractions"],
        galactic_cut_deg=PLANCK["galactic_cut_deg"],
        point_source_density_deg2=PLANCK["point_source_density_deg2"],
        point_source_radius_arcmin=PLANCK["point_source_radius_arcmin"],
    script:
        "../scripts/synthetic_sky.py"


rule sky_cutouts:
    """Cutouts of the sky at every PSZ2 cluster with a redshift, the Golden flag, masked pixels filled."""
    input:
        sky=PLANCK["ymap"] if REAL_SKY else "resources/sky/synthetic_sky.fits",
        masks=PLANCK["masks"] if REAL_SKY else ["resources/sky/synthetic_mask.fits"],
        psz2=PSZ2,
        truth=[] if REAL_SKY else ["results/sky/truth.csv"],
    output:
        directory("results/sky/cutouts.zarr"),
    log:
        "logs/sky_cutouts.log",
    benchmark:
        "benchmarks/out/sky_cutouts.tsv"
    conda:
        "../../envs/maps.yaml"
    resources:
        mem_mb=per_attempt(8000),
    params:
        seed=derive_seed(config["seed"], "sky_cutouts"),
        nside=PLANCK["nside"],
        map_npix=config["instrument"]["map_npix"],
        reso_arcmin=config["instrument"]["pixel_arcmin"],
        golden_radius_arcmin=PLANCK["golden_radius_arcmin"],
        mask_column=PLANCK["mask_column"] if REAL_SKY else 0,
    script:
        "../scripts/sky_cutouts.py"
