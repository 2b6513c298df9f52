if SHARDS == 1:

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

else:

    rule accuracy_shard:
        input:
            unpack(inference_inputs("accuracy")),
        output:
            result=layout.shard_result(
                "{system}", "{manifest}", "{env}", "{device}", "{shard}"
            ),
            logits=layout.shard_logits(
                "{system}", "{manifest}", "{env}", "{device}", "{shard}"
            ),
            topk=layout.shard_topk(
                "{system}", "{manifest}", "{env}", "{device}", "{shard}"
            ),
        log:
            f"{RESULTS}/logs/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy_shard{{shard}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/accuracy/{{system}}/{{manifest}}/{{env}}/{{device}}_shard{{shard}}.tsv"
        wildcard_constraints:
            shard=r"\d+",
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

    rule merge_accuracy_shards:
        input:
            result=shard_files(layout.shard_result),
            logits=shard_files(layout.shard_logits),
            topk=shard_files(layout.shard_topk),
        output:
            result=layout.accuracy_result("{system}", "{manifest}", "{env}", "{device}"),
            logits=layout.logits("{system}", "{manifest}", "{env}", "{device}"),
            topk=layout.topk("{system}", "{manifest}", "{env}", "{device}"),
        log:
            f"{RESULTS}/logs/inference/{{system}}/{{manifest}}/{{env}}/{{device}}/accuracy_merge.log",
        conda:
            "../envs/workflow.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=30,
        script:
            "../scripts/merge_accuracy_shards.py"


for _system in TIMED_SYSTEMS:

    rule:
        name:
            f"latency_round_{re.sub(r'[^A-Za-z0-9_]', '_', _system)}"
        input:
            unpack(round_inputs(_system)),
        output:
            directory(layout.round_dir(_system, "{repeat}")),
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
            runtime=round_runtime(_system),
            slurm_partition=study.systems.get(_system, {}).get("slurm_partition", ""),
            constraint=study.systems.get(_system, {}).get("slurm_constraint", ""),
            gres=study.systems.get(_system, {}).get("slurm_gres", ""),
        params:
            python=env_python("host"),
            plan=round_plan(_system),
        shell:
            ROUNDS_SHELL
