rule preprocess:
    input:
        index=layout.dataset_index("{dataset}"),
        code=code_stamp("preprocess", script="preprocess.py"),
    output:
        cache=layout.preprocessed("{dataset}", "{spec}"),
        chunks=directory(
            layout.cache_chunks(layout.preprocessed("{dataset}", "{spec}"))
        ),
    log:
        f"{RESULTS}/logs/preprocess/{{dataset}}/{{spec}}.log",
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
