"""The workflow configuration: overlays, one validation, a frozen config object, and per-stage slices.

How a run's config is made (the same in the Snakefile and in ``fast2full --config A --config B``):

1. ``config.yaml`` is the base; every ``--configfile`` (and ``--config key=value``) is **deep-merged**
   over it, mappings key by key, anything else (lists, numbers, strings) replaced whole.  A ``null``
   value deletes the key, so an overlay can remove a default entry (``opendata: {local_files: null}``).
2. The merged result is validated **once** against ``schemas/config.schema.yaml``, and the schema's
   defaults are filled in once (:func:`validate`); cross-key checks (card files exist, split fractions
   sum to 1, ``aggregate.compare_size`` is a training size, chunk seeds unique) follow.
3. Each stage gets only its **slice** (:func:`stage_slice`): the keys its job depends on, with the
   same nesting as the full config.  The Snakefile passes the slice to the job's command as JSON
   (``fast2full STAGE --config-json '{...}'``) through the rule's ``params:``, so Snakemake reruns
   exactly the jobs whose slice changed (``--rerun-triggers params``, on by default).
4. Stage functions receive a :class:`Config`: an immutable mapping (nested mappings immutable too,
   lists turned into tuples) with typed accessors for the top-level keys.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import jsonschema
import yaml

from fast2full.common import Fast2FullError

SCHEMA_PATH = Path(str(resources.files("fast2full") / "schemas" / "config.schema.yaml"))


class ConfigError(Fast2FullError):
    """The configuration is invalid; the message names the key."""


# ------------------------------------------------------------------------------------ frozen object


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses every change (JSON-serialisable, picklable, hashable by identity)."""

    def _readonly(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("the configuration is read-only (change config.yaml or pass an overlay)")

    __setitem__ = __delitem__ = _readonly
    clear = pop = popitem = setdefault = update = _readonly
    __ior__ = _readonly

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))


def freeze(obj: Any) -> Any:
    """Deeply immutable copy: mappings -> :class:`FrozenDict`, lists -> tuples."""
    if isinstance(obj, Mapping):
        return FrozenDict({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    return obj


def thaw(obj: Any) -> Any:
    """Plain ``dict``/``list`` copy of a (frozen) config, e.g. for YAML output."""
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [thaw(v) for v in obj]
    return obj


class Config(FrozenDict):
    """The validated configuration (or a stage's slice of it): read-only, typed top-level accessors.

    Sections absent from a slice read as empty mappings (``config.training`` of the generate slice
    is ``{}``); scalar keys absent from a slice raise ``KeyError`` naming the key.
    """

    def __init__(self, data: Mapping[str, Any] = ()) -> None:  # type: ignore[assignment]
        super().__init__({k: freeze(v) for k, v in dict(data).items()})

    def _section(self, key: str) -> Mapping[str, Any]:
        value = self.get(key)
        return value if value is not None else FrozenDict()

    @property
    def seed(self) -> int:
        return int(self["seed"])

    @property
    def simulator(self) -> str:
        return str(self["simulator"])

    @property
    def generation(self) -> Mapping[str, Any]:
        return self._section("generation")

    @property
    def processes(self) -> Mapping[str, Mapping[str, Any]]:
        return self._section("processes")

    @property
    def detectors(self) -> Mapping[str, Mapping[str, Any]]:
        return self._section("detectors")

    @property
    def pileup(self) -> Mapping[str, Any]:
        return self._section("pileup")

    @property
    def opendata(self) -> Mapping[str, Any]:
        return self._section("opendata")

    @property
    def selection(self) -> Mapping[str, Mapping[str, float]]:
        return self._section("selection")

    @property
    def domains(self) -> Mapping[str, Any]:
        return self._section("domains")

    @property
    def tensors(self) -> Mapping[str, Any]:
        return self._section("tensors")

    @property
    def training(self) -> Mapping[str, Any]:
        return self._section("training")

    @property
    def aggregate(self) -> Mapping[str, Any]:
        return self._section("aggregate")

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): what the workflow passes as ``--config-json``."""
        return json.dumps(self, sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------------------------ merging


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` merged over ``base`` (new dict): mappings merged key by key, other values replaced;
    ``None`` in the overlay deletes the key.  The same rule as Snakemake's ``--configfile``."""
    out = copy.deepcopy(thaw(base))
    for key, value in overlay.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(thaw(value))
    return out


def prune_nulls(obj: Any) -> Any:
    """Drop mapping entries whose value is ``None`` (Snakemake's merge keeps them as ``None``)."""
    if isinstance(obj, Mapping):
        return {k: prune_nulls(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [prune_nulls(v) for v in obj]
    return obj


# ------------------------------------------------------------------------------------ validation


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = yaml.safe_load(SCHEMA_PATH.read_text())
    return schema


def _without_required(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_required(v) for k, v in schema.items() if k not in ("required", "minProperties")}
    if isinstance(schema, list):
        return [_without_required(v) for v in schema]
    return schema


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        return dict(node)
    return schema


def fill_defaults(config: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """``config`` with the schema's ``default`` values filled in where a key is absent (new object)."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if isinstance(config, dict):
        out = dict(config)
        props = schema.get("properties", {})
        for key, sub in props.items():
            sub = _resolve(sub, root)
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
        for key, value in out.items():
            if key in props:
                out[key] = fill_defaults(value, props[key], root)
            else:
                for pattern, sub in schema.get("patternProperties", {}).items():
                    if re.search(pattern, key):
                        out[key] = fill_defaults(value, sub, root)
                        break
        return out
    return config


def _schema_at(schema: dict[str, Any], root: dict[str, Any], key: str) -> dict[str, Any] | None:
    schema = _resolve(schema, root)
    if key in schema.get("properties", {}):
        return _resolve(schema["properties"][key], root)
    for pattern, sub in schema.get("patternProperties", {}).items():
        if re.search(pattern, key):
            return _resolve(sub, root)
    extra = schema.get("additionalProperties")
    return _resolve(extra, root) if isinstance(extra, dict) else None


def coerce_strings(data: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """String leaves turned into the number/boolean the schema asks for at that key.

    Snakemake parses nested ``--config key={a: 1}`` values as strings; this gives them their types
    (only where the schema expects a number/integer/boolean and the string is one)."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    if isinstance(data, Mapping):
        out = {}
        for k, v in data.items():
            sub = _schema_at(schema, root, k)
            out[k] = coerce_strings(v, sub, root) if sub is not None else v
        return out
    if isinstance(data, (list, tuple)):
        items = schema.get("items")
        return [coerce_strings(v, items, root) if isinstance(items, dict) else v for v in data]
    if isinstance(data, str):
        types = schema.get("type", [])
        types = [types] if isinstance(types, str) else list(types)
        wanted = tuple(t for t in ("integer", "number", "boolean") if t in types)
        if wanted:
            try:
                value = yaml.safe_load(data)
            except yaml.YAMLError:
                return data
            ok = {
                "integer": isinstance(value, int) and not isinstance(value, bool),
                "number": isinstance(value, (int, float)) and not isinstance(value, bool),
                "boolean": isinstance(value, bool),
            }
            if any(ok[t] for t in wanted):
                return value
    return data


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


def _schema_check(config: Mapping[str, Any], schema: dict[str, Any], source: str) -> None:
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(thaw(config)), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise ConfigError(f"{source}: invalid key '{_key_path(err)}': {err.message}")


def validate(config: Mapping[str, Any], source: str = "config", base_dir: str | Path = ".") -> dict[str, Any]:
    """Validate the merged ``config`` once and return it with ``null`` entries dropped and the schema
    defaults filled in (a new dict).

    Raises ConfigError with a message naming the key (``processes.ttbar.chunks``) and the cause.
    """
    schema = load_schema()
    pruned: dict[str, Any] = prune_nulls(thaw(config))
    _schema_check(pruned, schema, source)
    config = cfg = fill_defaults(pruned, schema)
    for name, det in config.get("detectors", {}).items():
        card = Path(base_dir) / det["card"]
        if not card.is_file():
            raise ConfigError(f"{source}: invalid key 'detectors.{name}.card': card file {card} does not exist")
    fr = config.get("tensors", {}).get("split_fractions")
    if fr and abs(sum(fr.values()) - 1.0) > 1e-6:
        raise ConfigError(
            f"{source}: invalid key 'tensors.split_fractions': fractions sum to {sum(fr.values())}, not 1"
        )
    cmp = config.get("aggregate", {}).get("compare_size")
    sizes = config.get("training", {}).get("sizes", [])
    if cmp is not None and cmp not in sizes:
        raise ConfigError(f"{source}: invalid key 'aggregate.compare_size': {cmp} is not one of training.sizes {sizes}")
    from fast2full.generate import check_unique_seeds  # the slices see one process: check all here

    try:
        check_unique_seeds(cfg)
    except Fast2FullError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def validate_slice(data: Mapping[str, Any], source: str = "--config-json") -> Config:
    """Check a stage's slice (types, ranges, names; not completeness) and freeze it.

    The workflow validated the whole merged config at start-up; this catches a hand-written slice."""
    _schema_check(data, _without_required(load_schema()), source)
    return Config(data)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys")
    return data


def load_config(path: str | Path, *overlays: str | Path, base_dir: str | Path | None = None) -> dict[str, Any]:
    """Read ``path``, deep-merge each overlay file over it, validate once (a plain dict: tests and tools
    may edit it; stage code gets :func:`load_frozen`'s :class:`Config`)."""
    merged: dict[str, Any] = read_yaml(path)
    for ov in overlays:
        merged = deep_merge(merged, read_yaml(ov))
    source = " + ".join(str(p) for p in (path, *overlays))
    base = base_dir if base_dir is not None else Path(path).parent
    return validate(merged, source=source, base_dir=base)


def load_frozen(path: str | Path, *overlays: str | Path, base_dir: str | Path | None = None) -> Config:
    """:func:`load_config` as the frozen :class:`Config` that stage functions receive."""
    return Config(load_config(path, *overlays, base_dir=base_dir))


def load_config_json(text: str) -> Config:
    """The slice passed by the workflow as ``--config-json``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config-json: not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("--config-json: the config must be a JSON object")
    return validate_slice(data)


# ------------------------------------------------------------------------------------ stage slices


def _pick(section: Mapping[str, Any] | None, keys: Iterable[str]) -> dict[str, Any]:
    section = section or {}
    return {k: section[k] for k in keys if k in section}


def _roles(config: Mapping[str, Any]) -> dict[str, Any]:
    """Only the roles of every process and Open Data sample (is_signal, pileup exclusion)."""
    out: dict[str, Any] = {"processes": {p: _pick(c, ["role"]) for p, c in config.get("processes", {}).items()}}
    samples = config.get("opendata", {}).get("samples", {})
    if samples:
        out["opendata"] = {"samples": {s: _pick(c, ["role"]) for s, c in samples.items()}}
    return out


#: training keys a training job depends on, read by ``fast2full train`` (TrainSettings.KEYS is built from
#: this list); tasks/archs/targets/skip only shape the plan, `jobs` is wiring
TRAIN_KEYS = (
    "learning_rates",
    "min_steps",
    "max_steps",
    "pretrain_min_steps",
    "pretrain_max_steps",
    "val_every_steps",
    "patience",
    "batch_size",
    "model_size",
)
#: opendata keys the manifest depends on (not local_files, not the manifest path: those are wiring)
MANIFEST_KEYS = ("release", "metadata_file", "samples", "retries", "backoff_s", "timeout_s", "min_rate_bytes_s")

STAGES = ("generate", "simulate", "manifest", "skim_delphes", "skim_physlite", "tensorize", "train", "aggregate")


def stage_slice(config: Mapping[str, Any], stage: str, **wc: str) -> dict[str, Any]:
    """The part of ``config`` that one job of ``stage`` depends on, nested as in the full config.

    ``wc``: the job's wildcards that narrow the slice (``process``, ``sample``, ``task``).
    """
    c = config
    if stage == "generate":
        proc = wc["process"]
        # not `chunks`: adding a chunk must not rerun the existing ones (the plan checks the range)
        entry = {k: v for k, v in c["processes"][proc].items() if k != "chunks"}
        return {"seed": c["seed"], "generation": c["generation"], "processes": {proc: entry}}
    if stage == "simulate":
        return {"pileup": dict(c.get("pileup", {}))}
    if stage == "manifest":
        return {"opendata": _pick(c.get("opendata"), MANIFEST_KEYS)}
    if stage == "skim_delphes":
        proc = wc["process"]
        # chunks: the per-event weight divides the process cross-section over its chunks
        return {"selection": c["selection"], "processes": {proc: _pick(c["processes"][proc], ["role", "chunks"])}}
    if stage == "skim_physlite":
        sample = wc["sample"]
        od = c.get("opendata", {})
        return {
            "selection": c["selection"],
            "opendata": {
                **_pick(od, ["chunk_size", "timeout_s"]),
                "samples": {sample: _pick(od["samples"][sample], ["role"])},
            },
        }
    if stage == "tensorize":
        task = wc["task"]
        tensors = c.get("tensors", {})
        out = {
            "selection": c["selection"],
            "tensors": {**_pick(tensors, ["split_fractions"]), "tasks": _pick(tensors.get("tasks"), [task])},
        }
        return {**out, **_roles(c)}
    if stage == "train":
        return {"domains": _pick(c["domains"], ["source"]), "training": _pick(c["training"], TRAIN_KEYS)}
    if stage == "aggregate":
        return {
            "seed": c["seed"],
            "domains": c["domains"],
            "training": c["training"],
            "aggregate": c.get("aggregate", {}),
        }
    raise ValueError(f"unknown stage {stage!r} (one of {STAGES})")


def stage_json(config: Mapping[str, Any], stage: str, **wc: str) -> str:
    """:func:`stage_slice` as canonical JSON: the rule's ``params`` value and the ``--config-json``."""
    return json.dumps(thaw(stage_slice(config, stage, **wc)), sort_keys=True, separators=(",", ":"))
