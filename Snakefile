# fast2full: pretraining on fast simulation, fine-tuning on full simulation.
# Rules only wire files to `fast2full <stage>` subcommands; the logic lives in src/fast2full.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "src/fast2full/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/opendata.smk"
include: "workflow/rules/skim.smk"
include: "workflow/rules/tensorize.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"


rule all:
    input:
        all_targets(),
    default_target: True
