from reproscope.acquire.lockfile import lock_path

# One mechanism per run (USE_CONDA, rules/common.smk): Snakemake's conda builds the
# environments from the pin files and post-deploy scripts, or build_env makes a virtualenv
# from the lock.
ENV_MECHANISM = "conda" if USE_CONDA else "venv"


rule build_env:
    input:
        env=lambda wc: config["environments"][wc.env],
        lock=lambda wc: str(lock_path(Path(config["environments"][wc.env]))),
        code=code_stamp("build_env", script="build_env.py"),
    output:
        layout.env_lock("{env}"),
    log:
        layout.log("build_env", "{env}"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        prefix=lambda wc: layout.env_prefix(wc.env),
        mechanism=ENV_MECHANISM,
    script:
        "../scripts/build_env.py"
