rule preprocess:
    input:
        index=f"{RESULTS}/datasets/{{dataset}}/index.json",
    output:
        cache=f"{RESULTS}/preprocess/{{dataset}}/{{spec}}/cache.json",
        chunks=directory(f"{RESULTS}/preprocess/{{dataset}}/{{spec}}/chunks"),
    log:
        f"{RESULTS}/logs/preprocess/{{dataset}}/{{spec}}.log",
    wildcard_constraints:
        spec=names_regex(set(SPECS) - TRANSIENT_SPECS),
    conda:
        "../envs/workflow.yaml"
    # One process per core; Snakemake lowers this to the cores it is given.
    threads: workflow.cores
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        spec=lambda wc: canonical(geometric_spec(study.manifest(SPECS[wc.spec]).inputs)),
        chunk_images=CHUNK_IMAGES,
    script:
        "../scripts/preprocess.py"


use rule preprocess as preprocess_transient with:
    output:
        cache=temp(f"{RESULTS}/preprocess/{{dataset}}/{{spec}}/cache.json"),
        chunks=temp(directory(f"{RESULTS}/preprocess/{{dataset}}/{{spec}}/chunks")),
    wildcard_constraints:
        spec=names_regex(TRANSIENT_SPECS),
