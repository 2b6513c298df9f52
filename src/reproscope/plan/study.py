"""The study: config + manifests + environments, checked together, expanded into one job table."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from reproscope.acquire.datasets import regex_problem
from reproscope.acquire.envfile import EnvFile, read_env_file
from reproscope.acquire.lockfile import LOCK_COMMAND, LockError, lock_path, read_lock
from reproscope.acquire.preprocess import geometric_spec, spec_hash
from reproscope.errors import InputError, InputErrors
from reproscope.plan.ablation import apply_overrides, diagnosis_candidates, field_of, variant_name
from reproscope.plan.manifest import Manifest, load_manifests, semantic_errors, url_errors
from reproscope.plan.parse_cache import ParseCache
from reproscope.plan.schema import validate
from reproscope.runtime.entrypoints import BUILDERS, check_entry_point
from reproscope.runtime.latency import REMEASURE_BUDGET_S
from reproscope.runtime.runners import FRAMEWORKS
from reproscope.runtime.scenarios.loadgen import MULTI_STREAM_SAMPLES
from reproscope.runtime.scenarios.server_search import server_point_max_s
from reproscope.yamlio import check_values, is_kind

DEFAULT_SYSTEM = {"local": {"devices": ["cpu", "cuda"]}}
CONVERTER_OUTPUT = {
    "onnx-export": "onnx",
    "keras-efficientnet-lite": "keras",
    "keras-resnet50": "pytorch-state-dict",
}
# What each converter reads: a PyTorch state_dict, except the Keras ResNet-50 port.
CONVERTER_INPUT = {"keras-resnet50": "keras"}


@dataclass
class Study:
    config: dict[str, Any]
    config_file: str
    manifests: dict[str, Manifest]  # every manifest in the directory, by name
    envs: dict[str, EnvFile]
    jobs: pd.DataFrame = field(default_factory=pd.DataFrame)
    # variant name -> {"base", "kind" (ablation | diagnosis), "overrides", "field"}
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    # manifest name -> (manifest, its preprocessing spec hash): the workflow asks once or
    # twice per inference job; manifests are frozen, and a name re-bound to another
    # Manifest object is hashed again.
    _preprocess_hashes: dict[str, tuple[Manifest, str]] = field(default_factory=dict, repr=False)

    @property
    def settings(self) -> dict[str, Any]:
        return self.config["study"]

    @property
    def dataset(self) -> str:
        return self.settings["dataset"]

    @property
    def systems(self) -> dict[str, Any]:
        return self.config.get("systems") or DEFAULT_SYSTEM

    def threads_of(self, system: str) -> int:
        """Intra-op threads of a system's jobs: its own `threads`, else study.threads."""
        return self.systems.get(system, {}).get("threads", self.settings["threads"])

    def env_of(self, name: str) -> str:
        """The environment a manifest runs in: its own unless the study overrides it."""
        return self.settings.get("environment") or self.manifests[name].environment

    def envs_of(self, name: str, device: str = "cpu") -> list[str]:
        """Its environment plus those the study compares it in (software-stack versions);
        on CUDA each one's CUDA counterpart."""
        extra = self.settings.get("compare_environments", {}).get(name, [])
        envs = [self.env_of(name), *[e for e in extra if e != self.env_of(name)]]
        if device == "cuda":
            return [self.cuda_env_of(name, env) or "" for env in envs]
        return envs

    def cuda_env_of(self, name: str, env: str) -> str | None:
        """study.cuda_environments[env]; under an `environment` override (e.g. host, a
        CPU interpreter) the counterpart of the manifest's own environment."""
        mapping = self.settings.get("cuda_environments", {})
        return mapping.get(env) or mapping.get(self.manifests[name].environment)

    def cuda_jobs(self, gpu_present: bool) -> bool:
        return "cuda" in self.settings["devices"] and bool(
            gpu_present or self.settings.get("cuda_without_gpu")
        )

    def artifact_name(self, name: str) -> str:
        """Variants share their base manifest's artifact (overrides never touch the source)."""
        return self.variants[name]["base"] if name in self.variants else name

    def converter_env_of(self, name: str) -> str:
        derived = self.manifests[name].source["derived"]
        return self.settings.get("environment") or derived["environment"]

    def manifest(self, name: str) -> Manifest:
        return self.manifests[name]

    def architecture_job(self, name: str, env: str) -> dict[str, Any] | None:
        """A manifest's architecture as a job carries it: with the import names of the
        packages pinned in the environment it runs in, which the runner checks the
        resolved entry point against before calling it."""
        arch = self.manifests[name].data.get("architecture")
        if arch is None:
            return None
        return {**arch, "packages": sorted(self.envs[env].import_names())}

    def preprocess_hash(self, name: str) -> str:
        """The key of a manifest's geometric cache: manifests that differ only in the
        per-pixel stages (colour order, normalisation, dtype, layout) share it."""
        manifest = self.manifests[name]
        cached = self._preprocess_hashes.get(name)
        if cached is None or cached[0] is not manifest:
            cached = (manifest, spec_hash(geometric_spec(manifest.inputs)))
            self._preprocess_hashes[name] = cached
        return cached[1]

    def unsafe_pickle(self, name: str) -> bool:
        """Whether the artifact comes from a code-carrying pickle (consented to in the
        config), directly or through the manifest it was converted from."""
        source = self.manifests[self.artifact_name(name)].source
        if source.get("unsafe_pickle"):
            return True
        derived = source.get("derived")
        return bool(derived) and self.unsafe_pickle(derived["from"])

    def needed_manifests(self) -> list[str]:
        """Selected manifests plus every manifest they are derived from, transitively."""
        needed: list[str] = []
        stack = list(self.settings["models"])
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.append(name)
            derived = self.manifests[name].source.get("derived")
            if derived:
                stack.append(derived["from"])
        return sorted(needed)


MLPERF_TIMING = {
    "warmup": 10,
    "min_duration_s": 600.0,
    "min_queries": 1024,
    "max_duration_s": 7200.0,
    "target_ci_rel": 0.02,
    # LoadGen points take mlperf.conf's durations and counts, unshortened, and keep LoadGen's
    # log thread as it is (reproscope.runtime.scenarios.loadgen); Server's search trials
    # stay short, its confirmation run does not.
    "profile": "mlperf",
    "server_trial_max_s": 60.0,
    "server_search_budget_s": 1800.0,
}


def load_study(
    config: dict[str, Any],
    config_file: str,
    gpu_present: bool = False,
    parsed: ParseCache | None = None,
) -> Study:
    """Validate the config, manifests and environment files; expand the job table.

    parsed: manifests checked before, by content (the workflow passes layout.parse_cache)."""
    check_values(config, config_file)  # --config overrides never passed load_yaml
    validate(config, "config", config_file)
    if config.get("timing_profile") == "mlperf":
        settings = {**config["study"], "timing": MLPERF_TIMING}
        if "server" in settings:  # MLPerf holds the p99 under the bound
            settings["server"] = {**settings["server"], "latency_percentile": 0.99}
        config = {**config, "study": settings}
    if not is_kind(config["manifests"], "dir"):
        raise InputErrors(
            [
                InputError(
                    config_file,
                    "manifests",
                    f"{config['manifests']!r} is not a directory (relative to {Path.cwd()})",
                    "point it at the directory of manifest YAML files",
                )
            ]
        )
    manifests = load_manifests(config["manifests"], parsed)
    errors: list[InputError] = []
    envs: dict[str, EnvFile] = {}
    for name, path in config["environments"].items():
        if not is_kind(path, "file"):
            errors.append(
                InputError(
                    config_file,
                    f"environments.{name}",
                    f"{path!r} is not a file (relative to {Path.cwd()})",
                    f"point it at the environment file, e.g. envs/{name}.yaml",
                )
            )
            continue
        try:
            envs[name] = read_env_file(name, path)
        except InputError as exc:
            errors.append(exc)
        if not lock_path(Path(path)).is_file():
            errors.append(
                InputError(
                    config_file,
                    f"environments.{name}",
                    f"{path!r} has no lock {str(lock_path(Path(path)))!r}: environments are "
                    "built from their lock alone",
                    f"write it with `{LOCK_COMMAND} --envs {Path(path).parent} {Path(path).stem}`",
                )
            )
        else:
            try:  # read as pip reads it, or refused, before any job (or pip) sees it
                read_lock(lock_path(Path(path)))
            except LockError as exc:
                errors.append(InputError(lock_path(Path(path)), exc.field, exc.problem, exc.fix))
    study = Study(config=config, config_file=config_file, manifests=manifests, envs=envs)
    errors.extend(_cross_check(study))
    if not errors:
        errors.extend(_expand_variants(study))
    if not errors:
        errors.extend(_unsafe_pickle_consent(study))
    if errors:
        raise InputErrors(errors)
    if study.cuda_jobs(gpu_present):
        cuda_errors = _cuda_environment_errors(study)
        if cuda_errors:
            raise InputErrors(cuda_errors)
    study.jobs = job_table(study, gpu_present)
    return study


def _cuda_environment_errors(study: Study) -> list[InputError]:
    """A CUDA job never runs in a CPU-only environment: each environment a CUDA job would
    use must have a declared CUDA counterpart whose pins are not a CPU-only build."""
    errors = []
    mapping = study.settings.get("cuda_environments", {})
    for name in study.settings["models"]:
        for cpu_env, cuda_env in zip(study.envs_of(name), study.envs_of(name, "cuda"), strict=True):
            if not cuda_env:
                errors.append(
                    InputError(
                        study.config_file,
                        f"study.cuda_environments.{cpu_env}",
                        f"{name!r} has CUDA jobs but {cpu_env!r} has no CUDA environment",
                        f"declare one (e.g. envs/{cpu_env}-cuda.yaml) under 'environments' "
                        f"and map {cpu_env}: <it> here, or drop cuda from study.devices",
                    )
                )
            elif cuda_env not in study.envs:
                errors.append(
                    InputError(
                        study.config_file,
                        "study.cuda_environments",
                        f"unknown environment {cuda_env!r}",
                        f"declare it under 'environments' or use one of {sorted(study.envs)}",
                    )
                )
            elif reason := study.envs[cuda_env].cpu_only():
                key = cpu_env if cpu_env in mapping else study.manifests[name].environment
                errors.append(
                    InputError(
                        study.config_file,
                        f"study.cuda_environments.{key}",
                        f"{cuda_env!r} ({study.envs[cuda_env].path}) is CPU-only: {reason}",
                        "map it to an environment built for CUDA",
                    )
                )
            else:
                errors.extend(_framework_version(study.manifests[name], study.envs[cuda_env]))
    return errors


def _cross_check(study: Study) -> list[InputError]:
    cfg, errors = study.config, []
    settings = cfg["study"]
    errors.extend(_config_names(study))
    errors.extend(_budget_errors(study))
    for name, dataset in cfg["datasets"].items():
        where = f"datasets.{name}"
        if "url" in dataset:
            errors.extend(url_errors(dataset["url"], study.config_file, f"{where}.url"))
        if "filename_regex" in dataset["labels"]:
            errors.extend(_regex_errors(dataset["labels"]["filename_regex"], study, where))
    timing = settings["timing"]
    if timing["max_duration_s"] < timing["min_duration_s"]:
        errors.append(
            InputError(
                study.config_file,
                "study.timing.max_duration_s",
                f"{timing['max_duration_s']} s is below min_duration_s {timing['min_duration_s']}",
                "make max_duration_s at least min_duration_s",
            )
        )
    if settings["dataset"] not in cfg["datasets"]:
        errors.append(
            InputError(
                study.config_file,
                "study.dataset",
                f"{settings['dataset']!r} is not declared",
                f"use one of {sorted(cfg['datasets'])}",
            )
        )
    for system in settings.get("systems", []):
        if system not in study.systems:
            errors.append(
                InputError(
                    study.config_file,
                    "study.systems",
                    f"unknown {system!r}",
                    f"declare it under 'systems' or use {sorted(study.systems)}",
                )
            )
    for i, name in enumerate(settings["models"]):
        if name not in study.manifests:
            errors.append(
                InputError(
                    study.config_file,
                    f"study.models[{i}]",
                    f"no manifest named {name!r} in {cfg['manifests']}",
                    f"use one of {sorted(study.manifests)}",
                )
            )
    if "Server" in settings.get("scenarios", []) and "server" not in settings:
        errors.append(
            InputError(
                study.config_file,
                "study.server",
                "the Server scenario needs its settings",
                "add study.server with at least latency_bound_ms",
            )
        )
    override = settings.get("environment")
    if override and override not in study.envs:
        errors.append(
            InputError(
                study.config_file,
                "study.environment",
                f"unknown {override!r}",
                f"use one of {sorted(study.envs)}",
            )
        )
        return errors
    for m in study.manifests.values():
        errors.extend(_manifest_against_envs(m, study, study.env_of(m.name)))
    for name, extra in settings.get("compare_environments", {}).items():
        field_name = f"study.compare_environments.{name}"
        if name not in settings["models"]:
            errors.append(
                InputError(
                    study.config_file,
                    field_name,
                    f"{name!r} is not in study.models",
                    "add it to study.models or remove it",
                )
            )
            continue
        for env_name in extra:
            if env_name not in study.envs:
                errors.append(
                    InputError(
                        study.config_file,
                        field_name,
                        f"unknown environment {env_name!r}",
                        f"use one of {sorted(study.envs)}",
                    )
                )
            else:
                compared = study.manifests[name]
                errors.extend(_framework_version(compared, study.envs[env_name]))
                errors.extend(_entry_point_errors(compared, study.envs[env_name]))
    return errors


def _config_names(study: Study) -> list[InputError]:
    """Names that become directories are unique after case-folding; every manifest the
    config names for ablations, diagnosis or unsafe-pickle consent exists."""
    cfg, errors = study.config, []
    sections = {
        "environments": cfg["environments"],
        "datasets": cfg["datasets"],
        "systems": cfg.get("systems") or {},
        "ablations.variants": (cfg.get("ablations") or {}).get("variants", {}),
    }
    for section, names in sections.items():
        seen: dict[str, str] = {}
        for name in names:
            other = seen.setdefault(name.casefold(), name)
            if other != name:
                errors.append(
                    InputError(
                        study.config_file,
                        f"{section}.{name}",
                        f"{name!r} and {other!r} differ only in case (they name the same "
                        "directory on case-insensitive file systems)",
                        "rename one of them",
                    )
                )
    named: list[tuple[str, str]] = []
    ablations = cfg.get("ablations")
    if ablations:
        named.append(("ablations.model", ablations["model"]))
        named.extend(
            (f"ablations.variants.{v}.model", spec["model"])
            for v, spec in ablations["variants"].items()
            if "model" in spec
        )
    named.extend((f"diagnose[{i}]", n) for i, n in enumerate(cfg.get("diagnose", [])))
    named.extend(
        (f"allow_unsafe_pickle[{i}]", n) for i, n in enumerate(cfg.get("allow_unsafe_pickle", []))
    )
    for where, name in named:
        if name not in study.manifests:
            errors.append(
                InputError(
                    study.config_file,
                    where,
                    f"no manifest named {name!r} in {cfg['manifests']}",
                    f"use one of {sorted(study.manifests)}",
                )
            )
    return errors


# Resource budgets: what a study may ask for unless its config raises the budget on purpose
# (`budgets:` in the config; the schema holds the hard maxima).
BUDGETS: dict[str, float] = {
    "max_images": 200_000,
    "max_batch_size": 1024,
    "max_point_duration_s": 600,
    "max_repeats": 30,
    "max_server_latency_bound_ms": 10_000,
    "max_server_workers": 64,
}


def _budget_values(cfg: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(budget, field, value) for every value a budget bounds."""
    settings = cfg["study"]
    found: list[tuple[str, str, Any]] = []
    for name, dataset in cfg["datasets"].items():
        for key in ("n_images", "limit"):
            if key in dataset:
                found.append(("max_images", f"datasets.{name}.{key}", dataset[key]))
    for i, size in enumerate(settings.get("batch_sizes", [])):
        found.append(("max_batch_size", f"study.batch_sizes[{i}]", size))
    if "accuracy_batch_size" in settings:
        found.append(
            ("max_batch_size", "study.accuracy_batch_size", settings["accuracy_batch_size"])
        )
    for key in ("min_duration_s", "max_duration_s"):
        if key in settings.get("timing", {}):
            found.append(("max_point_duration_s", f"study.timing.{key}", settings["timing"][key]))
    if "repeats" in settings:
        found.append(("max_repeats", "study.repeats", settings["repeats"]))
    server = settings.get("server", {})
    if "latency_bound_ms" in server:
        found.append(
            (
                "max_server_latency_bound_ms",
                "study.server.latency_bound_ms",
                server["latency_bound_ms"],
            )
        )
    if "max_batch" in server:
        found.append(("max_batch_size", "study.server.max_batch", server["max_batch"]))
    if "workers" in server:
        found.append(("max_server_workers", "study.server.workers", server["workers"]))
    return found


def _budget_errors(study: Study) -> list[InputError]:
    budgets = {**BUDGETS, **study.config.get("budgets", {})}
    errors = []
    for budget, field_name, value in _budget_values(study.config):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue  # the schema names a wrong type
        if value > budgets[budget]:
            errors.append(
                InputError(
                    study.config_file,
                    field_name,
                    f"{value} is over the budget {budget} = {budgets[budget]:g}",
                    f"lower it, or raise the budget on purpose with 'budgets: {{{budget}: "
                    f"{value:g}}}' in the config",
                )
            )
    return errors


def _regex_errors(pattern: str, study: Study, where: str) -> list[InputError]:
    field_name = f"{where}.labels.filename_regex"
    try:
        groups = re.compile(pattern).groups
    except (re.error, RecursionError, OverflowError) as exc:
        return [
            InputError(
                study.config_file,
                field_name,
                f"not a regular expression ({exc})",
                "write a Python regular expression such as '^(n\\d{8})_'",
            )
        ]
    problem = regex_problem(pattern)
    if problem:
        return [
            InputError(
                study.config_file,
                field_name,
                problem,
                "write a plain regex such as '^(n\\d{8})_': no quantifier inside a "
                "quantified group, no '|' under a quantifier, no back-reference",
            )
        ]
    if groups != 1:
        return [
            InputError(
                study.config_file,
                field_name,
                f"has {groups} groups; the class id is read from exactly one",
                "put one pair of parentheses around the class id (use (?:...) for others)",
            )
        ]
    return []


def _unsafe_pickle_consent(study: Study) -> list[InputError]:
    """A code-carrying pickle loads only with the study's consent, by manifest name, and a
    sha256 that pins the file consented to."""
    allowed = set(study.config.get("allow_unsafe_pickle", []))
    errors = []
    for name in study.needed_manifests():
        m = study.manifests[name]
        if not m.source.get("unsafe_pickle"):
            continue
        if name not in allowed:
            errors.append(
                InputError(
                    m.path,
                    "source.unsafe_pickle",
                    "a pickle that may execute code while loading, without the study's consent",
                    f"convert the file to a plain state_dict, or, if you trust it, add {name!r} "
                    f"to allow_unsafe_pickle in {study.config_file}",
                )
            )
        if "sha256" not in m.source:
            errors.append(
                InputError(
                    m.path,
                    "source.sha256",
                    "an unsafe pickle without a checksum (the consent would cover any file)",
                    "add 'sha256:' with the sha256 of the file you trust",
                )
            )
    return errors


def _expand_variants(study: Study) -> list[InputError]:
    """Register ablation and diagnosis variants as manifests named '<base>~<variant>'."""
    errors: list[InputError] = []
    requested: list[tuple[str, str, str, dict[str, Any], str]] = []
    ablations = study.config.get("ablations")
    if ablations:
        for variant, spec in ablations["variants"].items():
            base = spec.get("model", ablations["model"])
            requested.append(
                (base, variant, "ablation", spec["overrides"], f"ablations.variants.{variant}")
            )
    for i, base in enumerate(study.config.get("diagnose", [])):
        if base not in study.manifests:
            continue  # reported by _config_names
        for variant, overrides in diagnosis_candidates(study.manifests[base].data).items():
            requested.append((base, variant, "diagnosis", overrides, f"diagnose[{i}]"))
    for base, variant, kind, overrides, where in requested:
        if base not in study.settings["models"]:
            errors.append(
                InputError(
                    study.config_file,
                    where,
                    f"base manifest {base!r} is not in study.models",
                    "add it to study.models: a variant is "
                    "compared with its base's measured results",
                )
            )
            continue
        try:
            data = apply_overrides(study.manifests[base].data, overrides)
        except KeyError as exc:
            errors.append(
                InputError(
                    study.config_file,
                    f"{where}.overrides",
                    str(exc),
                    "override existing manifest fields (e.g. inputs.decoder)",
                )
            )
            continue
        try:
            validate(data, "manifest", f"{study.config_file} ({where} applied to {base})")
        except InputErrors as exc:
            errors.extend(exc.errors)
            continue
        name = variant_name(base, variant)
        data["name"] = name
        manifest = Manifest(path=study.manifests[base].path, data=data)
        # A variant is a manifest: every check a manifest passes, in its base's environment.
        problems = semantic_errors(manifest, strict_labels=False)
        problems += _manifest_against_envs(manifest, study, study.env_of(base))
        for problem in problems:
            errors.append(
                InputError(
                    study.config_file,
                    f"{where}.overrides",
                    f"{problem.field}: {problem.problem}",
                    problem.fix,
                )
            )
        if not problems:
            study.manifests[name] = manifest
            study.variants[name] = {
                "base": base,
                "kind": kind,
                "overrides": overrides,
                "field": field_of(overrides),
            }
    return errors


def _manifest_against_envs(m: Manifest, study: Study, env_name: str) -> list[InputError]:
    errors = []
    env = study.envs.get(env_name)
    if env is None and env_name in study.config["environments"]:
        return []  # declared, but its file failed to load: that error is already reported
    if env is None:
        return [
            InputError(
                m.path,
                "environment",
                f"{m.environment!r} is not in the study config",
                f"use one of {sorted(study.envs)} or add it under 'environments'",
            )
        ]
    derived = m.source.get("derived")
    if derived:
        if derived["from"] not in study.manifests:
            errors.append(
                InputError(
                    m.path,
                    "source.derived.from",
                    f"no manifest named {derived['from']!r}",
                    f"use one of {sorted(study.manifests)}",
                )
            )
        if derived["environment"] not in study.config["environments"]:
            errors.append(
                InputError(
                    m.path,
                    "source.derived.environment",
                    f"{derived['environment']!r} is not in the study config",
                    f"use one of {sorted(study.envs)}",
                )
            )
        output = CONVERTER_OUTPUT[derived["converter"]]
        if m.source["format"] != output:
            errors.append(
                InputError(
                    m.path,
                    "source.format",
                    f"converter {derived['converter']!r} writes {output!r}, not "
                    f"{m.source['format']!r}",
                    f"set source.format to {output!r} or choose the matching converter",
                )
            )
        source = study.manifests.get(derived["from"])
        reads = CONVERTER_INPUT.get(derived["converter"], "pytorch-state-dict")
        if source is not None and source.source["format"] != reads:
            errors.append(
                InputError(
                    m.path,
                    "source.derived.from",
                    f"{source.name!r} is a {source.source['format']!r} artifact; converter "
                    f"{derived['converter']!r} reads {reads!r}",
                    f"derive from the model's {reads!r} manifest",
                )
            )
            source = None
        converter_env = study.envs.get(study.settings.get("environment") or derived["environment"])
        if converter_env is not None and source is not None:
            # the converter builds the source's architecture in its own environment
            errors.extend(_entry_point_errors(source, converter_env))
    errors.extend(_claims_follow_source(m, study))
    errors.extend(_entry_point_errors(m, env))
    errors.extend(_framework_version(m, env))
    return errors


def _root_of(m: Manifest, study: Study) -> Manifest:
    """The manifest a chain of derivations starts from (the one whose weights they carry)."""
    seen = {m.name}
    while "derived" in m.source and m.source["derived"]["from"] in study.manifests:
        m = study.manifests[m.source["derived"]["from"]]
        if m.name in seen:
            break
        seen.add(m.name)
    return m


def _claims_follow_source(m: Manifest, study: Study) -> list[InputError]:
    """Random weights carry no claim through a conversion; real weights keep theirs."""
    if "derived" not in m.source:
        return []
    root = _root_of(m, study)
    random = "random_init" in root.source
    if random and "claims" in m.data:
        return [
            InputError(
                m.path,
                "claims",
                f"derived from {root.name!r}, whose weights are random (source.random_init)",
                "remove claims: random weights are for performance only",
            )
        ]
    if not random and "claims" not in m.data and "derived" not in root.source:
        return [
            InputError(
                m.path,
                "claims",
                "required field is missing",
                f"add 'claims' (the weights come from {root.name!r})",
            )
        ]
    return []


def _entry_point_errors(m: Manifest, env: EnvFile) -> list[InputError]:
    """A registered builder's package is pinned in the environment it runs in (an
    unregistered one is reported by the manifest's own checks)."""
    if "architecture" not in m.data:
        return []
    entry_point = m.data["architecture"]["entry_point"]
    if entry_point not in BUILDERS:
        return []
    problem = check_entry_point(entry_point, env.import_names())
    if problem is None:
        return []
    return [
        InputError(
            m.path,
            "architecture.entry_point",
            f"{problem} (environment {env.name!r}, {env.path})",
            f"pin its package in {env.path}, or run the manifest in an environment that does",
        )
    ]


def _framework_version(m: Manifest, env: EnvFile) -> list[InputError]:
    try:
        spec = SpecifierSet(m.data["framework"]["version"])
    except InvalidSpecifier:
        return [
            InputError(
                m.path,
                "framework.version",
                "not a version specifier",
                "write a PEP 440 specifier such as '>=2.13,<2.15'",
            )
        ]
    distributions = FRAMEWORKS[m.framework].distributions
    pinned = [env.version_of(d) for d in distributions]
    pinned = [v for v in pinned if v]
    if not pinned:
        return [
            InputError(
                m.path,
                "environment",
                f"{env.path} pins no {m.framework} package",
                f"pin one of {distributions} there",
            )
        ]
    version = Version(pinned[0]).base_version
    if version not in spec:
        return [
            InputError(
                m.path,
                "framework.version",
                f"environment {env.name!r} ({env.path}) pins {m.framework} "
                f"{pinned[0]}, outside {spec}",
                f"widen framework.version to include {version}, or set "
                f"'environment' to one that pins a matching {m.framework}",
            )
        ]
    return []


def job_table(study: Study, gpu_present: bool) -> pd.DataFrame:
    """One row per inference job: accuracy passes (batch_size 0) and latency runs."""
    settings = study.settings
    systems = settings.get("systems") or list(study.systems)[:1]
    rows = []
    for system in systems:
        system_devices = study.systems[system]["devices"]
        for device in settings["devices"]:
            if device not in system_devices:
                continue
            if device == "cuda" and not study.cuda_jobs(gpu_present):
                continue
            for name in settings["models"]:
                for env in study.envs_of(name, device):
                    base = _row(study, name, system, device, env, "study")
                    if study.systems[system].get("accuracy", True):
                        rows.append(
                            {
                                **base,
                                "mode": "accuracy",
                                "batch_size": 0,
                                "scenario": "",
                                "repeat": 0,
                            }
                        )
                    if name in settings.get("accuracy_only", []):
                        continue
                    rows.extend(
                        {
                            **base,
                            "mode": "latency",
                            "batch_size": bs,
                            "scenario": scenario,
                            "repeat": repeat,
                        }
                        for scenario, bs in timing_points(settings)
                        for repeat in range(settings.get("repeats", 1))
                    )
            for name, variant in study.variants.items():
                env = study.envs_of(variant["base"], device)[0]
                rows.append(
                    {
                        **_row(study, name, system, device, env, variant["kind"]),
                        "mode": "accuracy",
                        "batch_size": 0,
                    }
                )
    return pd.DataFrame(rows)


def variant_only_caches(jobs: pd.DataFrame) -> set[str]:
    """Geometric caches (by spec hash) that only ablation and diagnosis variants read.
    Their chunks are removed once those jobs are done (the greedy diagnosis rebuilds what
    it needs one spec at a time), so a study keeps the pixels of its models only: each
    spec is 150 KB per image at 224 px."""
    if not len(jobs):
        return set()
    of_models = set(jobs.loc[jobs["kind"] == "study", "preprocess"])
    return set(jobs["preprocess"]) - of_models


def timing_points(settings: dict[str, Any]) -> list[tuple[str, int]]:
    """(scenario, batch size) pairs. FixedBatch: every batch size. LoadGen's scenarios: the
    samples a query carries (SingleStream 1, MultiStream 8) or the SUT's batch (Offline: the
    largest batch size; Server: its dynamic batch limit)."""
    points = []
    for scenario in settings.get("scenarios", ["FixedBatch"]):
        if scenario == "FixedBatch":
            points.extend(("FixedBatch", bs) for bs in sorted(settings["batch_sizes"]))
        elif scenario == "Offline":
            points.append(("Offline", max(settings["batch_sizes"])))
        elif scenario == "MultiStream":
            points.append(("MultiStream", MULTI_STREAM_SAMPLES))
        elif scenario == "Server":
            points.append(("Server", settings.get("server", {}).get("max_batch", 1)))
        else:
            points.append((scenario, 1))
    return points


#: Seconds a configuration's process may take before its first point (imports, loading).
CONFIG_START_S = 60.0


def round_runtime_minutes(settings: dict[str, Any], n_configs: int) -> int:
    """A round job's time limit (SLURM's --time): every point of every configuration at
    its time cap, doubled for warm-up and breakdown, a Server point at its search budget
    and confirmation runs."""
    cap = float(settings["timing"]["max_duration_s"])
    server_run = server_point_max_s(settings["timing"])
    per_config = CONFIG_START_S + sum(
        2 * (server_run if scenario == "Server" else cap) for scenario, _ in timing_points(settings)
    )
    # re-measurement of disturbed points (reproscope.runtime.latency), within its budget
    per_config += float(settings["timing"].get("remeasure_budget_s", REMEASURE_BUDGET_S))
    return max(10, math.ceil(n_configs * per_config / 60))


def _row(study: Study, name: str, system: str, device: str, env: str, kind: str) -> dict[str, Any]:
    m = study.manifests[name]
    return {
        "system": system,
        "manifest": name,
        "model": m.model,
        "framework": m.framework,
        "env": env,
        "device": device,
        "preprocess": study.preprocess_hash(name),
        "kind": kind,
    }
