rule aggregate:
    input:
        index=layout.dataset_index(study.dataset),
        accuracy=ACCURACY_RESULTS,
        logits=beside(ACCURACY_RESULTS, layout.logits_of),
        topk=beside(ACCURACY_RESULTS, layout.topk_of),
        latency=RESULT_FILES.round_dirs,
        flops=targets.flops_files(study),
        made_from=RESULT_FILES.dependencies(ACCURACY_RESULTS + LATENCY_RESULTS),
        labels=sorted(
            {str(study.manifest(n).labels_path) for n in study.settings["models"]}
        ),
        code=code_stamp("aggregate", script="aggregate.py"),
    output:
        runs=report(
            layout.summary("runs.csv"),
            caption="../report/runs.rst",
            category="Tables",
        ),
        accuracy=report(
            layout.summary("accuracy.csv"),
            caption="../report/accuracy.rst",
            category="Tables",
        ),
        agreement=report(
            layout.summary("agreement.csv"),
            caption="../report/agreement.rst",
            category="Tables",
        ),
        repeats=report(
            layout.summary("repeats.csv"),
            caption="../report/repeats.rst",
            category="Tables",
        ),
        comparisons=report(
            layout.summary("comparisons.csv"),
            caption="../report/comparisons.rst",
            category="Tables",
        ),
        environments=report(
            layout.summary("environments.csv"),
            caption="../report/environments.rst",
            category="Tables",
        ),
    log:
        layout.log("aggregate"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        manifests=lambda wc: for_report(
            canonical(summaries.manifest_summaries(study, study.settings["models"]))
        ),
        # the timing points inside the rounds' folders
        latency=LATENCY_RESULTS,
        jobs=RESULT_FILES.digests(ACCURACY_RESULTS + LATENCY_RESULTS),
        min_effect=study.settings.get("min_effect", MIN_EFFECT),
    script:
        "../scripts/aggregate.py"


rule compare_variants:
    input:
        index=layout.dataset_index(study.dataset),
        # the variants' bases only: another model's edit leaves these tables untouched
        base=RESULT_FILES.base_accuracy,
        variants=VARIANT_RESULTS,
        topk=beside(RESULT_FILES.base_accuracy + VARIANT_RESULTS, layout.topk_of),
        made_from=RESULT_FILES.dependencies(
            RESULT_FILES.base_accuracy + VARIANT_RESULTS
        ),
        labels=sorted({str(study.manifest(n).labels_path) for n in VARIANT_MANIFESTS}),
        code=code_stamp("compare_variants", script="compare_variants.py"),
    output:
        ablations=report(
            layout.summary("ablations.csv"),
            caption="../report/ablations.rst",
            category="Ablations",
        ),
        diagnosis=report(
            layout.summary("diagnosis.csv"),
            caption="../report/diagnosis.rst",
            category="Ablations",
        ),
    log:
        layout.log("compare_variants"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        manifests=lambda wc: for_report(
            canonical(summaries.manifest_summaries(study, VARIANT_MANIFESTS))
        ),
        variants=lambda wc: for_report(canonical(summaries.variant_summaries(study))),
        jobs=RESULT_FILES.digests(RESULT_FILES.base_accuracy + VARIANT_RESULTS),
    script:
        "../scripts/compare_variants.py"


rule system_ranking:
    input:
        runs=rules.aggregate.output.runs,
    output:
        table=report(
            layout.summary("system_ranking.csv"),
            caption="../report/system_ranking.rst",
            category="Performance",
        ),
        plot=report(
            layout.plot("system_ranking.png"),
            caption="../report/system_ranking.rst",
            category="Performance",
        ),
    log:
        layout.log("system_ranking"),
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
            index=layout.dataset_index(study.dataset),
            round1=rules.compare_variants.output.diagnosis,
            models=[artifact(n) for n in DIAGNOSED],
            locks=[layout.env_lock(study.env_of(n)) for n in DIAGNOSED],
        output:
            report(
                layout.summary("diagnosis_greedy.csv"),
                caption="../report/diagnosis_greedy.rst",
                category="Ablations",
            ),
        log:
            layout.log("diagnose_greedy"),
        conda:
            "../envs/workflow.yaml"
        # one process per core while building caches; inference uses study.threads
        threads: workflow.cores
        resources:
            mem_mb=8000,
            runtime=120,
        params:
            caches=layout.preprocess_dir(study.dataset),
            work=layout.diagnosis_dir(),
            diagnosed=lambda wc: for_report(
                canonical(summaries.diagnosis_jobs(study, env_python))
            ),
        script:
            "../scripts/diagnose_greedy.py"
