# fast2full: pretraining on fast simulation, fine-tuning on full simulation.
# Rules only wire files to `fast2full <stage>` subcommands; the logic lives in src/fast2full.
from snakemake.utils import min_version, validate

from fast2full.config import ConfigError, validate as f2f_validate
from fast2full.pythia_settings import check_config as f2f_check_pythia

min_version("9.0")


# The default config, unless --configfile names another (which then replaces it, not merges into it).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


# One clear message naming the offending key (and missing cards, and any Pythia setting whose name
# Pythia does not know or whose value does not read back), before any job runs; then Snakemake's own
# schema validation on the same schema.
try:
    f2f_validate(config, source=(workflow.overwrite_configfiles or ["config.yaml"])[-1], base_dir=workflow.basedir)
    f2f_check_pythia(config, source=(workflow.overwrite_configfiles or ["config.yaml"])[-1])
except ConfigError as err:
    raise WorkflowError(str(err)) from None
validate(config, "src/fast2full/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/opendata.smk"
include: "workflow/rules/skim.smk"
include: "workflow/rules/tensorize.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/hpc.smk"


rule all:
    input:
        all_targets(),
    default_target: True
