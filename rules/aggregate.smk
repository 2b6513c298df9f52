rule aggregate:
    input:
        index=dataset_index(study.dataset),
        accuracy=accuracy_results(),
        latency=latency_results(),
        flops=flops_files(),
        labels=sorted(
            {str(study.manifest(n).labels_path) for n in study.settings["models"]}
        ),
    output:
        runs=report(
            f"{RESULTS}/summary/runs.csv",
            caption="../report/runs.rst",
            category="Tables",
        ),
        accuracy=report(
            f"{RESULTS}/summary/accuracy.csv",
            caption="../report/accuracy.rst",
            category="Tables",
        ),
        agreement=report(
            f"{RESULTS}/summary/agreement.csv",
            caption="../report/agreement.rst",
            category="Tables",
        ),
        repeats=report(
            f"{RESULTS}/summary/repeats.csv",
            caption="../report/repeats.rst",
            category="Tables",
        ),
        environments=report(
            f"{RESULTS}/summary/environments.csv",
            caption="../report/environments.rst",
            category="Tables",
        ),
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        manifests=lambda wc: canonical(manifest_summaries(study.settings["models"])),
    script:
        "../scripts/aggregate.py"


rule compare_variants:
    input:
        index=dataset_index(study.dataset),
        base=accuracy_results(),
        variants=variant_results(),
    output:
        ablations=report(
            f"{RESULTS}/summary/ablations.csv",
            caption="../report/ablations.rst",
            category="Ablations",
        ),
        diagnosis=report(
            f"{RESULTS}/summary/diagnosis.csv",
            caption="../report/diagnosis.rst",
            category="Ablations",
        ),
    log:
        f"{RESULTS}/logs/compare_variants.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        manifests=lambda wc: canonical(manifest_summaries()),
        variants=lambda wc: canonical(variant_summaries()),
    script:
        "../scripts/compare_variants.py"


rule system_ranking:
    input:
        runs=f"{RESULTS}/summary/runs.csv",
    output:
        table=report(
            f"{RESULTS}/summary/system_ranking.csv",
            caption="../report/system_ranking.rst",
            category="Performance",
        ),
        plot=report(
            f"{RESULTS}/plots/system_ranking.png",
            caption="../report/system_ranking.rst",
            category="Performance",
        ),
    log:
        f"{RESULTS}/logs/system_ranking.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/system_ranking.py"
