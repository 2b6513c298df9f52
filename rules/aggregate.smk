rule aggregate:
    input:
        index=layout.dataset_index(study.dataset),
        accuracy=ACCURACY_RESULTS,
        logits=beside(ACCURACY_RESULTS, layout.logits_of),
        topk=beside(ACCURACY_RESULTS, layout.topk_of),
        latency=ROUND_DIRS,
        flops=flops_files(),
        made_from=result_dependencies(ACCURACY_RESULTS + LATENCY_RESULTS),
        labels=sorted(
            {str(study.manifest(n).labels_path) for n in study.settings["models"]}
        ),
        code=code_stamp("aggregate", script="aggregate.py"),
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
        comparisons=report(
            f"{RESULTS}/summary/comparisons.csv",
            caption="../report/comparisons.rst",
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
        # the timing points inside the rounds' folders
        latency=LATENCY_RESULTS,
        jobs=result_digests(ACCURACY_RESULTS + LATENCY_RESULTS),
        min_effect=study.settings.get("min_effect", MIN_EFFECT),
    script:
        "../scripts/aggregate.py"


rule compare_variants:
    input:
        index=layout.dataset_index(study.dataset),
        base=ACCURACY_RESULTS,
        variants=VARIANT_RESULTS,
        topk=beside(ACCURACY_RESULTS + VARIANT_RESULTS, layout.topk_of),
        made_from=result_dependencies(ACCURACY_RESULTS + VARIANT_RESULTS),
        labels=sorted({str(study.manifest(n).labels_path) for n in EVALUATED}),
        code=code_stamp("compare_variants", script="compare_variants.py"),
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
        jobs=result_digests(ACCURACY_RESULTS + VARIANT_RESULTS),
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


if DIAGNOSED:

    rule diagnose_greedy:
        input:
            index=dataset_index(study.dataset),
            round1=layout.summary("diagnosis.csv"),
            models=[artifact(n) for n in DIAGNOSED],
            locks=[env_lock(study.env_of(n)) for n in DIAGNOSED],
        output:
            report(
                layout.summary("diagnosis_greedy.csv"),
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
            caches=f"{RESULTS}/preprocess/{study.dataset}",
            work=f"{RESULTS}/diagnosis",
            diagnosed=lambda wc: canonical(diagnosis_jobs()),
        script:
            "../scripts/diagnose_greedy.py"
