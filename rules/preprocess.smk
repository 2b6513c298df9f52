rule preprocess:
    input:
        index=f"{RESULTS}/datasets/{{dataset}}/index.json",
    output:
        tensor=f"{RESULTS}/preprocess/{{dataset}}/{{spec}}/inputs.npy",
        timing=f"{RESULTS}/preprocess/{{dataset}}/{{spec}}/inputs.json",
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
