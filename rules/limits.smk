# The machine's own limits (issue 30): one job per system and device that the study times,
# then limits.csv. A job re-runs when the system's definition (its stamp), an environment
# lock or the script changes.
LIMITS = targets.limits_points(study)
for _system in sorted({s for s, _ in LIMITS}):
    stamps.write_if_changed(
        layout.system_stamp(_system),
        {
            "system": canonical(study.systems.get(_system, {})),
            "threads": study.threads_of(_system),
        },
    )


rule limits:
    input:
        system=layout.system_stamp("{system}"),
        locks=lambda wc: [
            layout.env_lock(e)
            for e in targets.limits_plan(study, wc.system, wc.device)["envs"]
        ],
        code=code_stamp("limits", script="limits.py"),
    output:
        layout.limits_result("{system}", "{device}"),
    log:
        layout.log("limits", "{system}/{device}"),
    benchmark:
        layout.benchmark("limits", "{system}/{device}")
    wildcard_constraints:
        system=names_regex({s for s, _ in LIMITS}),
        device=names_regex({d for _, d in LIMITS}),
    conda:
        "../envs/workflow.yaml"
    threads: THREADS
    resources:
        mem_mb=4000,
        runtime=10,
        timing=1,
        slurm_partition=partition,
        constraint=constraint,
        gres=gres,
    params:
        plan=lambda wc: canonical(targets.limits_plan(study, wc.system, wc.device)),
        pythons=lambda wc: {
            e: env_python(e)
            for e in targets.limits_plan(study, wc.system, wc.device)["envs"]
        },
    script:
        "../scripts/limits.py"


rule limits_table:
    input:
        limits=[layout.limits_result(s, d) for s, d in LIMITS],
        code=code_stamp("limits_table", script="limits_table.py"),
    output:
        table=report(
            layout.summary("limits.csv"),
            caption="../report/limits.rst",
            category="Performance",
        ),
    log:
        layout.log("limits_table"),
    conda:
        "../envs/workflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/limits_table.py"
