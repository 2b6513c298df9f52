if SHARDS == 1:

    rule accuracy:
        input:
            unpack(inference_inputs(study, "accuracy", INFER_CODE)),
        output:
            result=layout.accuracy_result("{system}", "{manifest}", "{env}", "{device}"),
            logits=layout.logits("{system}", "{manifest}", "{env}", "{device}"),
            topk=layout.topk("{system}", "{manifest}", "{env}", "{device}"),
        log:
            layout.inference_log(
                "{system}", "{manifest}", "{env}", "{device}", "accuracy"
            ),
        benchmark:
            layout.accuracy_benchmark("{system}", "{manifest}", "{env}", "{device}")
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
            job=ACCURACY.job_json,
        shell:
            INFER_SHELL

else:

    rule accuracy_shard:
        input:
            unpack(inference_inputs(study, "accuracy", INFER_CODE)),
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
            layout.inference_log(
                "{system}", "{manifest}", "{env}", "{device}", "accuracy_shard{shard}"
            ),
        benchmark:
            layout.accuracy_benchmark(
                "{system}", "{manifest}", "{env}", "{device}", "{shard}"
            )
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
            job=ACCURACY.job_json,
        shell:
            INFER_SHELL

    rule merge_accuracy_shards:
        input:
            result=ACCURACY.shard_files(layout.shard_result),
            logits=ACCURACY.shard_files(layout.shard_logits),
            topk=ACCURACY.shard_files(layout.shard_topk),
        output:
            result=layout.accuracy_result("{system}", "{manifest}", "{env}", "{device}"),
            logits=layout.logits("{system}", "{manifest}", "{env}", "{device}"),
            topk=layout.topk("{system}", "{manifest}", "{env}", "{device}"),
        log:
            layout.inference_log(
                "{system}", "{manifest}", "{env}", "{device}", "accuracy_merge"
            ),
        conda:
            "../envs/workflow.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=30,
        script:
            "../scripts/merge_accuracy_shards.py"


for _system in RESULT_FILES.timed_systems:

    # One job per comparison group and round; {group} names the group (its model).
    rule:
        name:
            f"latency_round_{re.sub(r'[^A-Za-z0-9_]', '_', _system)}"
        input:
            unpack(ROUNDS.inputs(_system)),
        output:
            directory(layout.round_dir(_system, "{group}", "{repeat}")),
        log:
            layout.round_job_log(_system, "{group}", "{repeat}"),
        benchmark:
            layout.round_benchmark(_system, "{group}", "{repeat}")
        wildcard_constraints:
            group=names_regex(RESULT_FILES.groups[_system]),
            repeat=r"\d+",
        conda:
            "../envs/workflow.yaml"
        threads: THREADS
        resources:
            mem_mb=8000,
            runtime=ROUNDS.runtime(_system),
            timing=1,
            slurm_partition=study.systems.get(_system, {}).get("slurm_partition", ""),
            constraint=study.systems.get(_system, {}).get("slurm_constraint", ""),
            gres=study.systems.get(_system, {}).get("slurm_gres", ""),
        params:
            python=env_python("host"),
            plan=ROUNDS.plan(_system),
        shell:
            ROUNDS_SHELL
