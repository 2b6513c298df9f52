rule accuracy:
    input:
        model=lambda wc: artifact(wc.manifest),
        inputs=lambda wc: preprocessed(wc.manifest),
        lock=lambda wc: env_lock(wc.env),
    output:
        result=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy.json",
        logits=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/logits.npy",
        topk=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/topk.npy",
    log:
        f"{RESULTS}/logs/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy.log",
    conda:
        inference_env_file
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60,
        slurm_partition=partition,
        gres=gres,
    params:
        src=SRC,
        python=lambda wc: env_python(wc.env),
        job=lambda wc, output: inference_job(wc, output, "accuracy"),
    shell:
        "PYTHONPATH={params.src} {params.python} -m reproscope.infer {params.job:q} > {log} 2>&1"


rule latency:
    input:
        model=lambda wc: artifact(wc.manifest),
        inputs=lambda wc: preprocessed(wc.manifest),
        lock=lambda wc: env_lock(wc.env),
    output:
        result=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/latency_bs{{batch_size}}.json",
    log:
        f"{RESULTS}/logs/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/latency_bs{{batch_size}}.log",
    wildcard_constraints:
        batch_size=r"\d+",
    conda:
        inference_env_file
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60,
        slurm_partition=partition,
        gres=gres,
    params:
        src=SRC,
        python=lambda wc: env_python(wc.env),
        job=lambda wc, output: inference_job(wc, output, "latency"),
    shell:
        "PYTHONPATH={params.src} {params.python} -m reproscope.infer {params.job:q} > {log} 2>&1"
