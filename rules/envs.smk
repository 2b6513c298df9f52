from snakemake.settings.types import DeploymentMethod

from reproscope.lockfile import lock_path

# One mechanism per run: Snakemake's conda (`--sdm conda`, pin files + post-deploy scripts)
# builds the environments, or, without it, build_env makes a virtualenv from the lock.
ENV_MECHANISM = (
    "conda"
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    else "venv"
)


rule build_env:
    input:
        env=lambda wc: config["environments"][wc.env],
        lock=lambda wc: str(lock_path(Path(config["environments"][wc.env]))),
    output:
        f"{RESULTS}/envs/{{env}}/lock.json",
    log:
        f"{RESULTS}/logs/build_env/{{env}}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        prefix=lambda wc: env_prefix(wc.env),
        mechanism=ENV_MECHANISM,
    script:
        "../scripts/build_env.py"
