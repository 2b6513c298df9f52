rule fetch_model:
    input:
        code=code_stamp("fetch_model", script="fetch_model.py"),
    output:
        layout.artifact("{manifest}", "{suffix}"),
    log:
        layout.log("fetch_model", "{manifest}.{suffix}"),
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
        lock=lambda wc: layout.env_lock(study.converter_env_of(wc.manifest)),
        code=code_stamp("convert_model", shell=CONVERT_SHELL),
    output:
        layout.artifact("{manifest}", "{suffix}"),
    log:
        layout.log("convert_model", "{manifest}.{suffix}"),
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
        python=lambda wc: env_python(study.converter_env_of(wc.manifest)),
        job=lambda wc: jobs.conversion_job(study, wc.manifest).to_json(),
    shell:
        CONVERT_SHELL


rule init_model:
    input:
        lock=lambda wc: layout.env_lock(study.env_of(wc.manifest)),
        code=code_stamp("init_model", shell=RANDOM_INIT_SHELL),
    output:
        layout.artifact("{manifest}", "{suffix}"),
    log:
        layout.log("init_model", "{manifest}.{suffix}"),
    wildcard_constraints:
        manifest=names_regex(INITIALISED),
        suffix="pt|keras",
    conda:
        manifest_env_file
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        python=lambda wc: env_python(study.env_of(wc.manifest)),
        job=lambda wc: jobs.random_init_job(study, wc.manifest).to_json(),
    shell:
        RANDOM_INIT_SHELL


rule fetch_dataset:
    input:
        code=code_stamp("fetch_dataset", script="fetch_dataset.py"),
    output:
        layout.dataset_index("{dataset}"),
    log:
        layout.log("fetch_dataset", "{dataset}"),
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
        layout.artifact("{manifest}", "onnx"),
        code=code_stamp("count_flops", script="count_flops.py"),
    output:
        layout.flops("{manifest}"),
    log:
        layout.log("count_flops", "{manifest}"),
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
