from snakemake.utils import min_version

min_version("9.0")


import gc
import sys

# Planning a big study makes several objects per file of every job. With Python's default
# threshold (a collection every 700 new objects) the collector rescans the growing DAG
# thousands of times (benchmarks/scale_dag.py); every 10,000 keeps the peak memory alike.
gc.set_threshold(10_000, 10, 10)

sys.path.insert(0, f"{workflow.basedir}/src")
# The workflow profile's config check may have imported an installed reproscope (another
# checkout's): forget it, so that everything below imports this checkout's package.
for _module in [m for m in sys.modules if m.split(".")[0] == "reproscope"]:
    del sys.modules[_module]
from reproscope.plan.configcheck import check_workflow_configs
from reproscope.plan.runlock import claim_run
from reproscope.errors import InputError, InputErrors

# Locks left by a killed run are removed (and said so) when no other run is alive here.
if workflow.is_main_process:
    claim_run()

# Every config file Snakemake was given, re-read as data before anything from it is used
# (and config/config.yaml before the configfile directive below reads it).
try:
    check_workflow_configs(
        workflow.overwrite_configfiles, workflow.config_settings.config
    )
except (InputError, InputErrors) as exc:
    raise WorkflowError(f"reproscope: the study cannot start:\n{exc}") from None

if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/fetch.smk"
include: "rules/envs.smk"
include: "rules/limits.smk"
include: "rules/preprocess.smk"
include: "rules/inference.smk"
include: "rules/aggregate.smk"
include: "rules/plot.smk"


# What the parse made (the study, its job table) lives as long as the process: out of the
# collector's rescans from here on.
gc.freeze()


rule all:
    default_target: True
    input:
        targets.all_outputs(study),
