rule build_env:
    input:
        lambda wc: config["environments"][wc.env],
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
    script:
        "../scripts/build_env.py"
