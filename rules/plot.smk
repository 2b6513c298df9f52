rule plot:
    input:
        runs=rules.aggregate.output.runs,
        accuracy=rules.aggregate.output.accuracy,
        limits=rules.limits_table.output.table,
        code=code_stamp("plot", script="plot.py"),
    output:
        performance=report(
            layout.plot("latency_throughput.png"),
            caption="../report/latency_throughput.rst",
            category="Performance",
        ),
        breakdown=report(
            layout.plot("latency_breakdown.png"),
            caption="../report/breakdown.rst",
            category="Performance",
        ),
        accuracy=report(
            layout.plot("accuracy_vs_claim.png"),
            caption="../report/accuracy_vs_claim.rst",
            category="Accuracy",
        ),
    log:
        layout.log("plot"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        dataset=study.dataset,
    script:
        "../scripts/plot.py"


rule plot_comparisons:
    input:
        comparisons=rules.aggregate.output.comparisons,
        code=code_stamp("plot_comparisons", script="plot_comparisons.py"),
    output:
        report(
            layout.plot("comparisons_forest.png"),
            caption="../report/comparisons_forest.rst",
            category="Performance",
        ),
    log:
        layout.log("plot_comparisons"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        min_effect=study.settings.get("min_effect", MIN_EFFECT),
    script:
        "../scripts/plot_comparisons.py"


rule plot_ablations:
    input:
        ablations=rules.compare_variants.output.table,
        code=code_stamp("plot_ablations", script="plot_ablations.py"),
    output:
        report(
            layout.plot("ablations.png"),
            caption="../report/ablations_plot.rst",
            category="Ablations",
        ),
    log:
        layout.log("plot_ablations"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/plot_ablations.py"


rule plot_server:
    input:
        # aggregate has checked every record against its job before this reads them
        runs=rules.aggregate.output.runs,
        latency=RESULT_FILES.round_dirs,
        code=code_stamp("plot_server", script="plot_server.py"),
    output:
        report(
            layout.server_latency_plot(),
            caption="../report/server_latency.rst",
            category="Performance",
        ),
    log:
        layout.log("plot_server"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        # the timing points inside the rounds' folders (only Server's are drawn)
        latency=LATENCY_RESULTS,
    script:
        "../scripts/plot_server.py"
