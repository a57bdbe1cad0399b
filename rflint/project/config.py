"""Configuration: ``[tool.rflint]`` in ``pyproject.toml`` or ``rflint.toml``, and applying it.

The file is found by walking up from the current directory (``rflint.toml`` wins over
``pyproject.toml`` in the same directory, as ``ruff.toml`` does over ``pyproject.toml``);
``--config PATH`` overrides the search and ``--isolated`` ignores every file. The TOML is
validated against ``config_schema.json`` (a real JSON Schema, ``additionalProperties: false``,
loaded by :mod:`rflint.project.config_schema`) whose rule selectors are filled from the rule
registry at load time, so unknown keys, wrong types and unknown rule codes all fail the same
way: a :class:`~rflint.errors.ConfigError` naming the file and the key path.

Rules know nothing about configuration: :func:`apply_config` is a pure function from the raw
findings of one model to the findings the user asked for.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from rflint.checks import ALL_RULES, Rule
from rflint.project.config_checks import check_model_names, check_ops
from rflint.project.config_schema import check_schema, key_path, selectors
from rflint.spec import ModelSpec
from rflint.errors import ConfigError, UsageError
from rflint.kwargs import form_error
from rflint.ir import Finding, Severity

#: targets that name a file (relative ones are taken from the config file's folder)
FILE_SUFFIXES = (".py", ".pt2", ".onnx", ".pt", ".pth", ".ckpt")

#: seconds a model's import, factory and trace may take (``--timeout``, ``timeout`` in the
#: config; 0 for none): far beyond any real model (a 700-layer timm model takes a few
#: seconds), short enough that a hanging pre-commit hook ends on its own
DEFAULT_TIMEOUT = 300.0


class ValidationMemo(Protocol):
    """Tables validated before (:class:`rflint.engine.cache.ValidConfigs`): an unchanged
    configuration skips jsonschema, whose import alone costs more than a cached answer."""

    def seen(self, source: Path, table: Mapping[str, Any]) -> bool: ...

    def remember(self, source: Path, table: Mapping[str, Any]) -> None: ...

@dataclass(frozen=True)
class Override:
    """One ``[[tool.rflint.overrides]]`` entry. Empty ``models``/``layers`` mean "all"."""

    models: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    rules: Mapping[str, Severity] = field(default_factory=lambda: MappingProxyType({}))

    def matches(self, model: ModelSpec | str | None, layer: str) -> bool:
        """True if this override applies to ``layer`` (a qualname, "" = model-level) of ``model``."""
        if self.models and not _model_matches(self.models, model):
            return False
        if self.layers:
            return bool(layer) and layer_matches(self.layers, layer)
        return True


@dataclass(frozen=True)
class Config:
    """The effective configuration. ``path`` is None when no file was read."""

    path: Path | None = None
    root: Path = field(default_factory=Path.cwd)
    #: None means the default selection, ALL
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    #: rule code -> severity, from ``[tool.rflint.rules]``
    severities: Mapping[str, Severity] = field(default_factory=lambda: MappingProxyType({}))
    models: tuple[ModelSpec, ...] = ()
    overrides: tuple[Override, ...] = ()
    #: ``[tool.rflint.ops]``: dotted class or function path -> declaration (kind, kernel, ...)
    ops: Mapping[str, Mapping[str, object]] = field(default_factory=lambda: MappingProxyType({}))
    #: absolute folders from ``pythonpath``, relative to the config file when written
    pythonpath: tuple[Path, ...] = ()
    #: ``task``, ``causal``, ``sample-rate``: how models are judged (a model entry may override)
    task: str = "auto"
    causal: tuple[str, ...] = ()
    sample_rate: float | None = None

    @property
    def search_path(self) -> tuple[str, ...]:
        """Where model code is imported from: ``pythonpath``, then the project root (the config
        file's folder, or the working directory without one), as in pytest's ``pythonpath``."""
        return tuple(dict.fromkeys(str(p) for p in (*self.pythonpath, self.root)))

    @property
    def model_defaults(self) -> ModelSpec:
        """What the configuration gives a model that no entry names (a target on the command
        line): the search path, the declared ops and how models are judged."""
        return ModelSpec("", ops=self.ops, pythonpath=self.search_path, task=self.task, causal=self.causal, sample_rate=self.sample_rate)

    def with_severity(self, code: str, severity: Severity) -> Config:
        """The config with one rule's severity set (``--strict``: RF001 as an error)."""
        return replace(self, severities=MappingProxyType({**self.severities, code: severity}))
    #: ``cache-dir``, resolved against the file's directory (None: the default place)
    cache_dir: Path | None = None
    #: ``timeout``: seconds a model's import, factory and trace may take (0: no limit)
    timeout: float = DEFAULT_TIMEOUT
    #: ``baseline``: the baseline file ``check`` applies when no ``--baseline`` is given,
    #: resolved against the file's directory
    baseline: Path | None = None
    #: the validated table as written: the result cache keys on the parts that can change a
    #: model's raw report (:func:`rflint.engine.cache_keys.config_fingerprint`)
    table: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def with_selection(
        self,
        select: Sequence[str] | None = None,
        extend_select: Sequence[str] = (),
        ignore: Sequence[str] = (),
    ) -> Config:
        """The config with command-line selectors on top: ``--select`` replaces the file's
        ``select``; ``--extend-select`` and ``--ignore`` add to the file's lists."""
        for option, values in (("--select", select or ()), ("--extend-select", extend_select), ("--ignore", ignore)):
            for value in values:
                if value not in selectors():
                    raise UsageError(
                        f"{option}: unknown rule code or name {value!r}",
                        hint="run `rflint rule --all` for the list of rules",
                    )
        return replace(
            self,
            select=tuple(select) if select is not None else self.select,
            extend_select=self.extend_select + tuple(extend_select),
            ignore=self.ignore + tuple(ignore),
        )

    @property
    def enabled(self) -> frozenset[str]:
        """Codes of the rules this configuration runs (before per-layer overrides)."""
        return frozenset(rule.code for rule in ALL_RULES if self.is_enabled(rule))

    def is_enabled(self, rule: Rule) -> bool:
        """ruff's semantics: the most specific matching selector decides, and an ``ignore``
        beats a ``select`` of the same specificity. A severity of ``ignore`` disables too."""
        chosen = _specificity(self.select if self.select is not None else ("ALL",), rule)
        extended = _specificity(self.extend_select, rule)
        if extended is not None and (chosen is None or extended > chosen):
            chosen = extended
        ignored = _specificity(self.ignore, rule)
        if chosen is None or (ignored is not None and ignored >= chosen):
            return False
        return self.severities.get(rule.code) is not Severity.IGNORE


# --- finding and reading the file -------------------------------------------------------------


def find_config_file(start: Path | None = None) -> Path | None:
    """The nearest ``rflint.toml``, or ``pyproject.toml`` with a ``[tool.rflint]`` table,
    in ``start`` or one of its parents."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "rflint.toml"
        if candidate.is_file():
            return candidate
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and "rflint" in _table(_read_toml(candidate).get("tool")):
            return candidate
    return None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    isolated: bool = False,
    cwd: Path | None = None,
    memo: ValidationMemo | None = None,
) -> Config:
    """The configuration for a run: ``path`` (``--config``) if given, else the nearest file
    from ``cwd``; with ``isolated`` (``--isolated``) the defaults, reading nothing. ``memo``
    skips validating a table it has seen valid."""
    cwd = (cwd or Path.cwd()).resolve()
    if isolated:
        return Config(root=cwd)
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"{path}: config file not found")
    else:
        found = find_config_file(cwd)
        if found is None:
            return Config(root=cwd)
        file = found
    data = _read_toml(file)
    if file.name == "pyproject.toml":
        table = _table(data.get("tool")).get("rflint", {})
        prefix = "tool.rflint"
    else:
        table, prefix = data, ""
    return parse_config(table, source=file, prefix=prefix, cwd=cwd, memo=memo)


def parse_config(
    table: Mapping[str, Any], *, source: Path, prefix: str = "", cwd: Path | None = None, memo: ValidationMemo | None = None
) -> Config:
    """Validate one ``[tool.rflint]`` table and build the :class:`Config`.

    Raises:
        ConfigError: naming ``source`` and the key path of the first problem.
    """
    if memo is None or not memo.seen(source, table):
        check_schema(table, source, prefix)
        if memo is not None:
            memo.remember(source, table)
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: {prefix or 'the file'} must be a table, not {type(table).__name__}", hint="write [tool.rflint] in pyproject.toml")
    check_ops(table.get("ops", {}), str(source), prefix)
    root = source.resolve().parent
    _check_kwargs(table, source, prefix)
    pythonpath = _pythonpath(table.get("pythonpath", ()), root, source, prefix)
    search_path = tuple(dict.fromkeys(str(p) for p in (*pythonpath, root)))
    ops = MappingProxyType({name: MappingProxyType(dict(spec)) for name, spec in table.get("ops", {}).items()})
    models = tuple(replace(_model_spec({**_judging(table), **entry}, root, search_path), ops=ops) for entry in table.get("models", ()))
    check_model_names([m.display_name for m in models], str(source), prefix)
    return Config(
        path=source,
        root=root,
        select=tuple(table["select"]) if "select" in table else None,
        extend_select=tuple(table.get("extend-select", ())),
        ignore=tuple(table.get("ignore", ())),
        severities=_severities(table.get("rules", {})),
        models=models,
        ops=ops,
        overrides=tuple(
            Override(
                models=tuple(entry.get("models", ())),
                layers=tuple(entry.get("layers", ())),
                ignore=tuple(entry.get("ignore", ())),
                rules=_severities(entry.get("rules", {})),
            )
            for entry in table.get("overrides", ())
        ),
        pythonpath=pythonpath,
        cache_dir=root / table["cache-dir"] if "cache-dir" in table else None,
        timeout=float(table.get("timeout", Config.timeout)),
        baseline=root / table["baseline"] if "baseline" in table else None,
        table=MappingProxyType(dict(table)),
        task=table.get("task", "auto"),
        causal=tuple(str(a) for a in table.get("causal", ())),
        sample_rate=table.get("sample-rate"),
    )


def _check_kwargs(table: Mapping[str, Any], source: Path, prefix: str) -> None:
    """Class references in ``[[tool.rflint.models]] kwargs`` (``{ class = "torch.nn.Conv3d" }``)
    are checked for their form here, and imported only when the model is built."""
    for i, entry in enumerate(table.get("models", ())):
        problem = form_error(entry.get("kwargs", {}), key_path(prefix, ["models", i, "kwargs"]))
        if problem:
            raise ConfigError(f"{source}: {problem}")


def _judging(table: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level keys that say how models are judged, as defaults for every model entry."""
    return {k: table[k] for k in ("task", "causal", "sample-rate") if k in table}


def _pythonpath(entries: Sequence[str], root: Path, source: Path, prefix: str) -> tuple[Path, ...]:
    """``pythonpath`` entries as absolute folders; a missing folder is a config error (a typo
    would otherwise surface as a confusing import error)."""
    out = []
    for i, entry in enumerate(entries):
        try:
            folder = (root / os.path.expanduser(entry)).resolve()
        except (OSError, RuntimeError):  # a symbolic link loop
            folder = root / entry
        if not folder.is_dir():
            key = key_path(prefix, ["pythonpath", i])
            raise ConfigError(f"{source}: {key}: {entry!r} is not a folder (relative paths start at {root})")
        out.append(folder)
    return tuple(out)


# --- applying it ------------------------------------------------------------------------------


def apply_config(findings: Iterable[Finding], config: Config, model: ModelSpec | str | None = None) -> list[Finding]:
    """Selection, severity overrides and layer overrides, in that order (later overrides win).

    Args:
        findings: the raw findings of one model, each at its rule's default severity.
        config: the effective configuration.
        model: the model the findings belong to (its name and target are matched by
            ``[[tool.rflint.overrides]] models``); a plain string is matched as a name.

    Returns:
        The findings to report, with their configured severity; findings at ``ignore`` dropped.
    """
    rules = {rule.code: rule for rule in ALL_RULES}
    enabled = config.enabled
    out: list[Finding] = []
    for finding in findings:
        rule = rules.get(finding.code)
        if rule is not None and finding.code not in enabled:
            continue
        severity = config.severities.get(finding.code, finding.severity)
        for override in config.overrides:
            if not override.matches(model, finding.layer):
                continue
            if rule is not None and _specificity(override.ignore, rule) is not None:
                severity = Severity.IGNORE
            severity = override.rules.get(finding.code, severity)
        if severity is Severity.IGNORE:
            continue
        out.append(finding if severity is finding.severity else replace(finding, severity=severity))
    return out


def layer_matches(patterns: Sequence[str], qualname: str) -> bool:
    """ty-style dotted globs over a layer qualname: ``*`` is one segment (or part of one),
    ``**`` any number of segments, a leading ``!`` excludes, and the last matching pattern
    wins. A list that starts with an exclusion includes everything else."""
    included = bool(patterns) and patterns[0].startswith("!")
    name = tuple(qualname.split("."))
    for pattern in patterns:
        negate = pattern.startswith("!")
        if _glob_segments(tuple(pattern.lstrip("!").split(".")), name):
            included = not negate
    return included


# --- helpers ----------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed file, read once per run (finding the config file reads it already); a deep
    copy each time, so that no caller can change another's table."""
    try:
        stat = path.stat()
        return copy.deepcopy(_parsed_toml(str(path.resolve()), stat.st_mtime_ns, stat.st_size))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 text (byte {e.start})", hint="save the file as UTF-8") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None


@lru_cache(maxsize=8)
def _parsed_toml(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def _table(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a TOML table, else an empty one (``tool = "x"`` holds no rflint table)."""
    return value if isinstance(value, Mapping) else {}


def _code(key: str) -> str:
    for rule in ALL_RULES:
        if key in (rule.code, rule.name):
            return rule.code
    raise KeyError(key)  # unreachable after validation


def _severities(table: Mapping[str, str]) -> Mapping[str, Severity]:
    return MappingProxyType({_code(key): Severity(value) for key, value in table.items()})


def _specificity(selectors: Iterable[str], rule: Rule) -> int | None:
    """How specifically the best of ``selectors`` names ``rule``: ALL 0, a prefix its length,
    the code or name 100; None if none matches."""
    best: int | None = None
    for sel in selectors:
        if sel == "ALL":
            score = 0
        elif sel in (rule.code, rule.name):
            score = 100
        elif rule.code.startswith(sel):
            score = len(sel)
        else:
            continue
        best = score if best is None else max(best, score)
    return best


def _model_matches(patterns: Sequence[str], model: ModelSpec | str | None) -> bool:
    if model is None:
        return False
    if isinstance(model, str):
        names = {model}
    else:
        names = {model.target, model.display_name} | ({model.name} if model.name else set())
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names)


def _glob_segments(pattern: tuple[str, ...], name: tuple[str, ...]) -> bool:
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_glob_segments(rest, name[i:]) for i in range(len(name) + 1))
    return bool(name) and fnmatch.fnmatchcase(name[0], head) and _glob_segments(rest, name[1:])


def _model_spec(entry: Mapping[str, Any], root: Path, search_path: tuple[str, ...]) -> ModelSpec:
    """A model entry; a relative file target is relative to the config file's directory (made
    absolute, so that it loads from any working directory), and keeps its written form as its
    name so findings and baselines do not depend on the cwd."""
    target = entry["target"]
    name = entry.get("name")
    path_part, sep, attr = target.partition(":")
    if path_part.lower().endswith(FILE_SUFFIXES) and not os.path.isabs(path_part):
        name = name or target
        target = str(root / path_part) + sep + attr
    size = entry.get("input-size")
    return ModelSpec(
        target=target,
        input_size=(size,) if isinstance(size, int) else (tuple(size) if size is not None else None),
        input_shape=tuple(entry["input-shape"]) if "input-shape" in entry else None,
        name=name,
        kwargs=MappingProxyType(dict(entry.get("kwargs", {}))),
        leaf_modules=tuple(entry.get("leaf-modules", ())),
        pythonpath=search_path,
        task=entry.get("task", "auto"),
        causal=tuple(str(a) for a in entry.get("causal", ())),
        sample_rate=entry.get("sample-rate"),
    )
