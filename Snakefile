from snakemake.utils import min_version

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/fetch.smk"
include: "rules/envs.smk"
include: "rules/preprocess.smk"
include: "rules/inference.smk"
include: "rules/aggregate.smk"
include: "rules/plot.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
