rule preprocess:
    input:
        index=layout.dataset_index("{dataset}"),
        code=code_stamp("preprocess", script="preprocess.py"),
    output:
        tensor=layout.preprocessed("{dataset}", "{spec}"),
        timing=layout.preprocess_timing(layout.preprocessed("{dataset}", "{spec}")),
    log:
        f"{RESULTS}/logs/preprocess/{{dataset}}/{{spec}}.log",
    conda:
        "../envs/workflow.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        spec=lambda wc: canonical(spec_of(study.manifest(SPECS[wc.spec]).inputs)),
    script:
        "../scripts/preprocess.py"
