rule fetch_model:
    output:
        f"{RESULTS}/models/{{manifest}}/model.{{suffix}}",
    log:
        f"{RESULTS}/logs/fetch_model/{{manifest}}.{{suffix}}.log",
    wildcard_constraints:
        manifest=names_regex(FETCHED),
        suffix="pt|onnx|keras",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        source=lambda wc: canonical(study.manifest(wc.manifest).source),
        manifest=lambda wc: str(study.manifest(wc.manifest).path),
    script:
        "../scripts/fetch_model.py"


rule convert_model:
    input:
        source=lambda wc: artifact(
            study.manifest(wc.manifest).source["derived"]["from"]
        ),
        lock=lambda wc: env_lock(study.converter_env_of(wc.manifest)),
    output:
        f"{RESULTS}/models/{{manifest}}/model.{{suffix}}",
    log:
        f"{RESULTS}/logs/convert_model/{{manifest}}.{{suffix}}.log",
    wildcard_constraints:
        manifest=names_regex(DERIVED),
        suffix="pt|onnx|keras",
    conda:
        conversion_env_file
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        src=SRC,
        python=lambda wc: env_python(study.converter_env_of(wc.manifest)),
        job=lambda wc, input, output: conversion_job(
            wc.manifest, input.source, output[0]
        ),
    shell:
        "PYTHONPATH={params.src} {params.python} -m reproscope.convert.main {params.job:q} > {log} 2>&1"


rule init_model:
    input:
        lock=lambda wc: env_lock(study.env_of(wc.manifest)),
    output:
        f"{RESULTS}/models/{{manifest}}/model.{{suffix}}",
    log:
        f"{RESULTS}/logs/init_model/{{manifest}}.{{suffix}}.log",
    wildcard_constraints:
        manifest=names_regex(INITIALISED),
        suffix="pt|keras",
    conda:
        lambda wc: _env_file(study.env_of(wc.manifest))
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        src=SRC,
        python=lambda wc: env_python(study.env_of(wc.manifest)),
        job=lambda wc, output: random_init_job(wc.manifest, output[0]),
    shell:
        "PYTHONPATH={params.src} {params.python} -m reproscope.random_init {params.job:q} > {log} 2>&1"


rule fetch_dataset:
    output:
        f"{RESULTS}/datasets/{{dataset}}/index.json",
    log:
        f"{RESULTS}/logs/fetch_dataset/{{dataset}}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        spec=lambda wc: canonical(config["datasets"][wc.dataset]),
        workdir=lambda wc, output: str(Path(output[0]).parent),
    script:
        "../scripts/fetch_dataset.py"


rule count_flops:
    input:
        f"{RESULTS}/models/{{manifest}}/model.onnx",
    output:
        f"{RESULTS}/models/{{manifest}}/flops.json",
    log:
        f"{RESULTS}/logs/count_flops/{{manifest}}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        batch_size=1,
        model=lambda wc: study.manifest(wc.manifest).model,
    script:
        "../scripts/count_flops.py"
