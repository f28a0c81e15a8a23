"""Loading and validating the workflow configuration (``config.yaml``).

The same JSON schema is used by the Snakefile (``snakemake.utils.validate``) and by the CLI, so a bad
config fails before any job runs, with one message naming the offending key.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from fast2full.common import Fast2FullError

SCHEMA_PATH = Path(str(resources.files("fast2full") / "schemas" / "config.schema.yaml"))


class ConfigError(Fast2FullError):
    """The configuration is invalid; the message names the key."""


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties":
        # name the unknown key itself
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        parts.append(extra[0] if extra else "?")
    elif error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        parts.append(missing[0] if missing else "?")
    return ".".join(parts) or "<top level>"


def validate(config: dict, source: str = "config", base_dir: str | Path = ".") -> dict:
    """Validate ``config`` against the schema and check that every card file exists.

    Raises ConfigError with a message naming the key (``processes.ttbar.chunks``) and the cause.
    Returns the config with schema defaults filled in.
    """
    schema = load_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise ConfigError(f"{source}: invalid key '{_key_path(err)}': {err.message}")
    for name, det in config.get("detectors", {}).items():
        card = Path(base_dir) / det["card"]
        if not card.is_file():
            raise ConfigError(f"{source}: invalid key 'detectors.{name}.card': card file {card} does not exist")
    fr = config.get("tensors", {}).get("split_fractions")
    if fr and abs(sum(fr.values()) - 1.0) > 1e-6:
        raise ConfigError(f"{source}: invalid key 'tensors.split_fractions': fractions sum to "
                          f"{sum(fr.values())}, not 1")
    cmp = config.get("aggregate", {}).get("compare_size")
    sizes = config.get("training", {}).get("sizes", [])
    if cmp is not None and cmp not in sizes:
        raise ConfigError(f"{source}: invalid key 'aggregate.compare_size': {cmp} is not one of "
                          f"training.sizes {sizes}")
    return config


def load_config(path: str | Path, base_dir: str | Path | None = None) -> dict[str, Any]:
    """Read and validate a YAML config file."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys")
    return validate(config, source=str(path), base_dir=base_dir if base_dir is not None else path.parent)
