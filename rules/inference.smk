rule accuracy:
    input:
        unpack(inference_inputs("accuracy")),
    output:
        result=layout.accuracy_result("{system}", "{manifest}", "{env}", "{device}"),
        logits=layout.logits("{system}", "{manifest}", "{env}", "{device}"),
        topk=layout.topk("{system}", "{manifest}", "{env}", "{device}"),
    log:
        f"{RESULTS}/logs/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy.log",
    benchmark:
        f"{RESULTS}/benchmarks/accuracy/{{system}}/{{manifest}}/{{env}}/{{device}}.tsv"
    conda:
        inference_env_file
    threads: THREADS
    resources:
        mem_mb=8000,
        runtime=60,
        slurm_partition=partition,
        constraint=constraint,
        gres=gres,
    params:
        python=lambda wc: env_python(wc.env),
        job=lambda wc, output: inference_job(wc, output, "accuracy"),
    shell:
        INFER_SHELL


for _system in TIMED_SYSTEMS:

    rule:
        name:
            f"latency_round_{re.sub(r'[^A-Za-z0-9_]', '_', _system)}"
        input:
            unpack(round_inputs(_system)),
        output:
            round_results(_system, "{repeat}"),
        log:
            f"{RESULTS}/logs/inference/{_system}/round_r{{repeat}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/latency/{_system}/round_r{{repeat}}.tsv"
        wildcard_constraints:
            repeat=r"\d+",
        conda:
            "../envs/workflow.yaml"
        threads: THREADS
        resources:
            mem_mb=8000,
            runtime=240,
            slurm_partition=study.systems.get(_system, {}).get("slurm_partition", ""),
            constraint=study.systems.get(_system, {}).get("slurm_constraint", ""),
            gres=study.systems.get(_system, {}).get("slurm_gres", ""),
        params:
            python=env_python("host"),
            plan=round_plan(_system),
        shell:
            ROUNDS_SHELL
