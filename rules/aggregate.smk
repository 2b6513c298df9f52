rule aggregate:
    input:
        index=layout.dataset_index(study.dataset),
        accuracy=ACCURACY_RESULTS,
        logits=beside(ACCURACY_RESULTS, layout.logits_of),
        topk=beside(ACCURACY_RESULTS, layout.topk_of),
        latency=RESULT_FILES.round_dirs,
        flops=targets.flops_files(study),
        limits=rules.limits_table.output.table,
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
        unpack(lambda wc: variant_table_inputs("ablation")),
        code=code_stamp("compare_variants", script="compare_variants.py"),
    output:
        table=report(
            layout.summary("ablations.csv"),
            caption="../report/ablations.rst",
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
        kind="ablation",
        manifests=lambda wc: variant_table_manifests("ablation"),
        variants=lambda wc: variant_table_variants("ablation"),
        jobs=lambda wc: variant_table_digests("ablation"),
    script:
        "../scripts/compare_variants.py"


# The diagnosis table apart from the ablations: an edit of the ablations' base re-runs
# neither it nor the greedy diagnosis that reads it.
use rule compare_variants as diagnose_variants with:
    input:
        unpack(lambda wc: variant_table_inputs("diagnosis")),
        code=code_stamp("compare_variants", script="compare_variants.py"),
    output:
        table=report(
            layout.summary("diagnosis.csv"),
            caption="../report/diagnosis.rst",
            category="Ablations",
        ),
    log:
        layout.log("diagnose_variants"),
    params:
        kind="diagnosis",
        manifests=lambda wc: variant_table_manifests("diagnosis"),
        variants=lambda wc: variant_table_variants("diagnosis"),
        jobs=lambda wc: variant_table_digests("diagnosis"),


rule system_ranking:
    input:
        runs=rules.aggregate.output.runs,
        limits=rules.limits_table.output.table,
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
            round1=rules.diagnose_variants.output.table,
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
