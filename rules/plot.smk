rule plot:
    input:
        runs=rules.aggregate.output.runs,
        accuracy=rules.aggregate.output.accuracy,
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


rule plot_ablations:
    input:
        ablations=rules.compare_variants.output.ablations,
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
