if SHARDS == 1:

    rule accuracy:
        input:
            unpack(inference_inputs),
        output:
            result=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy.json",
            logits=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/logits.npy",
            topk=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/topk.npy",
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
            src=SRC,
            python=lambda wc: env_python(wc.env),
            job=lambda wc, output: inference_job(wc, output, "accuracy"),
        shell:
            "PYTHONPATH={params.src} {params.python} -m reproscope.infer {params.job:q} > {log} 2>&1"

else:

    rule accuracy_shard:
        input:
            unpack(inference_inputs),
        output:
            result=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy_shard{{shard}}.json",
            logits=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/logits_shard{{shard}}.npy",
            topk=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/topk_shard{{shard}}.npy",
        log:
            f"{RESULTS}/logs/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy_shard{{shard}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/accuracy/{{system}}/{{manifest}}/{{env}}/{{device}}_shard{{shard}}.tsv"
        wildcard_constraints:
            shard=r"\d+",
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
            src=SRC,
            python=lambda wc: env_python(wc.env),
            job=lambda wc, output: inference_job(wc, output, "accuracy"),
        shell:
            "PYTHONPATH={params.src} {params.python} -m reproscope.infer {params.job:q} > {log} 2>&1"

    rule merge_accuracy_shards:
        input:
            result=shard_files("accuracy_shard{shard}.json"),
            logits=shard_files("logits_shard{shard}.npy"),
            topk=shard_files("topk_shard{shard}.npy"),
        output:
            result=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy.json",
            logits=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/logits.npy",
            topk=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/topk.npy",
        log:
            f"{RESULTS}/logs/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy_merge.log",
        conda:
            "../envs/workflow.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=30,
        script:
            "../scripts/merge_accuracy_shards.py"


rule latency:
    input:
        unpack(inference_inputs),
    output:
        result=f"{RESULTS}/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/{{scenario}}_bs{{batch_size}}_r{{repeat}}.json",
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
        src=SRC,
        python=lambda wc: env_python(wc.env),
        job=lambda wc, output: inference_job(wc, output, "latency"),
    shell:
        "PYTHONPATH={params.src} {params.python} -m reproscope.infer {params.job:q} > {log} 2>&1"


if GROUPED:

    rule latency_grouped:
        input:
            unpack(inference_inputs),
        output:
            expand(
                f"{RESULTS}/inference/{{{{system}}}}/{{{{manifest}}}}/{{{{env}}}}/{{{{device}}}}/Offline_bs{{batch_size}}_r{{{{repeat}}}}.json",
                batch_size=BATCH_SIZES,
            ),
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
            src=SRC,
            python=lambda wc: env_python(wc.env),
            job=lambda wc, output: grouped_job(wc, output),
        shell:
            "PYTHONPATH={params.src} {params.python} -m reproscope.infer {params.job:q} > {log} 2>&1"
