rule plot:
    input:
        runs=f"{RESULTS}/summary/runs.csv",
        accuracy=f"{RESULTS}/summary/accuracy.csv",
        code=code_stamp("plot", script="plot.py"),
    output:
        performance=report(
            f"{RESULTS}/plots/latency_throughput.png",
            caption="../report/latency_throughput.rst",
            category="Performance",
        ),
        breakdown=report(
            f"{RESULTS}/plots/latency_breakdown.png",
            caption="../report/breakdown.rst",
            category="Performance",
        ),
        accuracy=report(
            f"{RESULTS}/plots/accuracy_vs_claim.png",
            caption="../report/accuracy_vs_claim.rst",
            category="Accuracy",
        ),
    log:
        f"{RESULTS}/logs/plot.log",
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
        ablations=f"{RESULTS}/summary/ablations.csv",
        code=code_stamp("plot_ablations", script="plot_ablations.py"),
    output:
        report(
            f"{RESULTS}/plots/ablations.png",
            caption="../report/ablations_plot.rst",
            category="Ablations",
        ),
    log:
        f"{RESULTS}/logs/plot_ablations.log",
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/plot_ablations.py"
