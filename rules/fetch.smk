rule fetch_model:
    output:
        f"{RESULTS}/models/{{manifest}}/model.{{suffix}}",
    log:
        f"{RESULTS}/logs/fetch_model/{{manifest}}.{{suffix}}.log",
    params:
        source=lambda wc: study.manifest(wc.manifest).source,
        manifest=lambda wc: str(study.manifest(wc.manifest).path),
    wildcard_constraints:
        manifest=names_regex(FETCHED),
        suffix="pt|onnx|keras",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    script:
        "../scripts/fetch_model.py"


rule convert_model:
    input:
        source=lambda wc: artifact(study.manifest(wc.manifest).source["derived"]["from"]),
        lock=lambda wc: env_lock(study.converter_env_of(wc.manifest)),
    output:
        f"{RESULTS}/models/{{manifest}}/model.{{suffix}}",
    log:
        f"{RESULTS}/logs/convert_model/{{manifest}}.{{suffix}}.log",
    params:
        src=SRC,
        python=lambda wc: env_python(study.converter_env_of(wc.manifest)),
        job=lambda wc, input, output: conversion_job(wc.manifest, input.source, output[0]),
    wildcard_constraints:
        manifest=names_regex(DERIVED),
        suffix="pt|onnx|keras",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "PYTHONPATH={params.src} {params.python} -m reproscope.convert.main {params.job:q} > {log} 2>&1"


rule fetch_dataset:
    output:
        f"{RESULTS}/datasets/{{dataset}}/index.json",
    log:
        f"{RESULTS}/logs/fetch_dataset/{{dataset}}.log",
    params:
        spec=lambda wc: config["datasets"][wc.dataset],
        config_file=_config_label(),
        workdir=f"{RESULTS}/datasets/{{dataset}}",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    script:
        "../scripts/fetch_dataset.py"
