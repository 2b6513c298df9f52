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
        layout.log("preprocess", "{dataset}/{spec}"),
    wildcard_constraints:
        spec=names_regex(set(SPECS) - VARIANT_CACHES),
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


# A cache only ablation and diagnosis variants read. Its chunks are kept like any other
# cache: variants of different manifests share it, and a temporary cache rebuilt for one of
# them re-runs every other reader (an edit of efficientnet-lite0-onnx re-ran the README
# example's diagnosis variants), which 144 MB per cache does not justify.
use rule preprocess as preprocess_variant with:
    wildcard_constraints:
        spec=names_regex(VARIANT_CACHES),
