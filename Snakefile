# fast2full: pretraining on fast simulation, fine-tuning on full simulation.
# Rules only wire files to `fast2full <stage>` subcommands; the logic lives in src/fast2full.
import sys
from pathlib import Path

from snakemake.utils import min_version

# This checkout's code, for the workflow and for every job: the Snakefile imports fast2full from the
# src/ beside it, and each job's shell puts that src/ first on PYTHONPATH (the rules run
# `python -m fast2full ...`).  A conda environment (--sdm conda) therefore holds no fast2full and can
# be shared by several checkouts (--conda-prefix); with `pip install -e .` it is the same code.
_SRC = Path(workflow.basedir) / "src"
if (_SRC / "fast2full" / "__init__.py").is_file():
    sys.path.insert(0, str(_SRC))

from fast2full.hpc.envs import job_shell_prefix
from fast2full.config import ConfigError, coerce_strings, deep_merge, load_schema
from fast2full.config import validate as f2f_validate
from fast2full.pythia_settings import check_config as f2f_check_pythia

min_version("9.0")

if (_SRC / "fast2full" / "__init__.py").is_file():
    # shell.prefix formats its text like a shell command: braces doubled
    shell.prefix(job_shell_prefix(_SRC).replace("{", "{{").replace("}", "}}"))


# config.yaml is the base: every --configfile and --config key=value is deep-merged over it by
# Snakemake (a null deletes a key).  The merged result is validated once and the schema defaults
# are filled in once, before any job runs; rules pass each job its slice (common.smk: stage_config).
configfile: "config.yaml"


report: "workflow/report/workflow.rst"


try:
    # nested --config values reach us as strings: give them the types the schema asks for
    _cli = coerce_strings(dict(workflow.config_settings.config), load_schema())
    _source = " + ".join(["config.yaml", *map(str, workflow.overwrite_configfiles)]) + (
        " + --config" if workflow.config_settings.config else ""
    )
    _merged = f2f_validate(deep_merge(config, _cli), source=_source, base_dir=workflow.basedir)
    # every Pythia setting's name exists and its value reads back (fast2full.pythia_settings)
    f2f_check_pythia(_merged, source=_source)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_merged)


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
    default_target: True
    input:
        all_targets(),
