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


if DIAGNOSED:

    rule diagnose_greedy:
        input:
            index=dataset_index(study.dataset),
            round1=f"{RESULTS}/summary/diagnosis.csv",
            models=[artifact(n) for n in DIAGNOSED],
            locks=[env_lock(study.env_of(n)) for n in DIAGNOSED],
        output:
            report(
                f"{RESULTS}/summary/diagnosis_greedy.csv",
                caption="../report/diagnosis_greedy.rst",
                category="Ablations",
            ),
        log:
            f"{RESULTS}/logs/diagnose_greedy.log",
        conda:
            "../envs/workflow.yaml"
        # one process per core while building caches; inference uses study.threads
        threads: workflow.cores
        resources:
            mem_mb=8000,
            runtime=120,
        params:
            src=SRC,
            caches=f"{RESULTS}/preprocess/{study.dataset}",
            work=f"{RESULTS}/diagnosis",
            diagnosed=lambda wc: canonical(diagnosis_jobs()),
        script:
            "../scripts/diagnose_greedy.py"
