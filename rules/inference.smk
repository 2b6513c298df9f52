rule accuracy:
    input:
        unpack(inference_inputs("accuracy")),
    output:
        result=layout.accuracy_result("{system}", "{manifest}", "{env}", "{device}"),
        logits=layout.logits("{system}", "{manifest}", "{env}", "{device}"),
        topk=layout.topk("{system}", "{manifest}", "{env}", "{device}"),
    log:
        f"{RESULTS}/logs/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy.log",
    benchmark:
        f"{RESULTS}/benchmarks/accuracy/{{system}}/{{manifest}}/{{env}}/{{device}}.tsv"
    conda:
        inference_env_file
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60,
        slurm_partition=partition,
        constraint=constraint,
        gres=gres,
    params:
        python=lambda wc: env_python(wc.env),
        job=lambda wc, output: inference_job(wc, output, "accuracy"),
    shell:
        INFER_SHELL


rule latency:
    input:
        unpack(inference_inputs("latency")),
    output:
        result=layout.latency_result(
            "{system}",
            "{manifest}",
            "{env}",
            "{device}",
            "{scenario}",
            "{batch_size}",
            "{repeat}",
        ),
    log:
        f"{RESULTS}/logs/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/{{scenario}}_bs{{batch_size}}_r{{repeat}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/latency/{{system}}/{{manifest}}/{{env}}/{{device}}/{{scenario}}_bs{{batch_size}}_r{{repeat}}.tsv"
    wildcard_constraints:
        batch_size=r"\d+",
        repeat=r"\d+",
        scenario=SINGLE_SCENARIOS,
    conda:
        inference_env_file
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60,
        slurm_partition=partition,
        constraint=constraint,
        gres=gres,
    params:
        python=lambda wc: env_python(wc.env),
        job=lambda wc, output: inference_job(wc, output, "latency"),
    shell:
        INFER_SHELL


if GROUPED:

    rule latency_grouped:
        input:
            unpack(inference_inputs("latency")),
        output:
            [
                layout.latency_result(
                    "{system}",
                    "{manifest}",
                    "{env}",
                    "{device}",
                    "Offline",
                    bs,
                    "{repeat}",
                )
                for bs in BATCH_SIZES
            ],
        log:
            f"{RESULTS}/logs/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/Offline_grouped_r{{repeat}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/latency/{{system}}/{{manifest}}/{{env}}/{{device}}/Offline_grouped_r{{repeat}}.tsv"
        wildcard_constraints:
            repeat=r"\d+",
        conda:
            inference_env_file
        threads: THREADS
        resources:
            mem_mb=8000,
            runtime=120,
            slurm_partition=partition,
            constraint=constraint,
            gres=gres,
        params:
            python=lambda wc: env_python(wc.env),
            job=lambda wc, output: grouped_job(wc, output),
        shell:
            INFER_SHELL
