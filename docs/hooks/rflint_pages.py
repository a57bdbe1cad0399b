"""MkDocs hook: the pages that are generated from the sources they document.

The rule pages come from ``rules/*.md`` (the files ``rflint rule`` prints and the test suite
executes), the benchmark figures from ``benchmarks/README.md`` and the configuration reference
from the JSON schema rflint validates ``[tool.rflint]`` against. Generating them at build time
means the site cannot drift from what rflint enforces: a new rule page or schema key appears on
the site without anyone editing the docs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File

#: where ``configuration.md`` wants the generated reference
SCHEMA_MARKER = "<!-- rflint:config-reference -->"
#: the nav section that lists the rule pages (``rules/index.md`` first, then one per rule)
RULES_SECTION = "Rules"


def _root(config: Any) -> Path:
    return Path(config.config_file_path).resolve().parent


def _rule_files(config: Any) -> list[Path]:
    return sorted((_root(config) / "rules").glob("RF*.md"))


def on_config(config: Any) -> Any:
    """Expand the nav's Rules section to the rule index followed by every rule page."""
    pages = ["rules/index.md"] + [f"rules/{path.name}" for path in _rule_files(config)]
    for item in config.nav or []:
        if isinstance(item, dict) and RULES_SECTION in item:
            item[RULES_SECTION] = pages
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the rule pages, the rule index and the benchmark page to the site."""
    for path in _rule_files(config):
        files.append(File.generated(config, f"rules/{path.name}", abs_src_path=str(path)))
    files.append(File.generated(config, "rules/index.md", content=_rule_index()))
    benchmarks = _root(config) / "benchmarks" / "README.md"
    files.append(File.generated(config, "benchmarks.md", abs_src_path=str(benchmarks)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Put the reference generated from the schema where ``configuration.md`` asks for it."""
    if SCHEMA_MARKER in markdown:
        markdown = markdown.replace(SCHEMA_MARKER, schema_reference(_config_schema()))
    return markdown


#: a Sphinx cross-reference role as the docstrings write it (``:class:`Report```), once rendered
SPHINX_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc):<code>~?([^<]+)</code>")


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Show the docstrings' Sphinx roles as the code they name: the docstrings follow the
    Python convention for cross-references, which mkdocstrings' Markdown leaves as text."""
    return SPHINX_ROLE.sub(r"<code>\1</code>", html)


def _rule_index() -> str:
    from rflint.checks import ALL_RULES

    lines = [
        "# Rules",
        "",
        "Every rule has a page with what it does, why it matters, an example that makes it fire",
        "and one that does not (both executed by the test suite), its options and references.",
        "`rflint rule CODE` prints the same page in a terminal.",
        "",
        "| code | name | default severity | summary |",
        "| --- | --- | --- | --- |",
    ]
    for rule in ALL_RULES:
        severity = getattr(rule.severity, "value", rule.severity)
        lines.append(f"| [{rule.code}]({rule.code}.md) | `{rule.name}` | {severity} | {rule.summary} |")
    return "\n".join(lines) + "\n"


def _config_schema() -> dict[str, Any]:
    """The JSON schema rflint validates ``[tool.rflint]`` against."""
    from rflint.project.config_schema import config_schema

    return config_schema()


# --- the configuration reference ------------------------------------------------------------

#: the TOML table each object of the schema is written as
TABLES = {
    "": "[tool.rflint]",
    "models": "[[tool.rflint.models]]",
    "overrides": "[[tool.rflint.overrides]]",
    "ops": '[tool.rflint.ops."dotted.path"]',
}


def schema_reference(schema: dict[str, Any]) -> str:
    """Markdown tables of every key of the schema, one table per TOML table, then the value types."""
    defs = schema.get("$defs", {})
    tables = {}
    for key, prop in schema.get("properties", {}).items():
        found = _object_def(prop, defs)
        if found is not None and key in TABLES:
            tables[key] = found
    out = [_key_table(TABLES[""], schema, defs, subtables=set(tables))]
    for key, (anchor, target) in tables.items():
        out.append(_key_table(TABLES[key], target, defs, schema["properties"][key].get("description", ""), anchor))
    out.append(_value_types(defs))
    return "\n\n".join(out) + "\n"


def _deref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _object_def(prop: dict[str, Any], defs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The name and schema of the table a key holds, as the items of an array or as map values."""
    node = _deref(prop, defs)
    for inner in (node.get("items"), node.get("additionalProperties")):
        if isinstance(inner, dict) and "$ref" in inner:
            target = _deref(inner, defs)
            if target.get("type") == "object" and "properties" in target:
                return inner["$ref"].rsplit("/", 1)[-1], target
    return None


def _key_table(
    title: str, node: dict[str, Any], defs: dict[str, Any], intro: str = "", anchor: str = "", subtables: set[str] = frozenset()
) -> str:
    required = set(node.get("required", []))
    rows = [f"### `{title}`" + (f" {{#{anchor}}}" if anchor else ""), ""]
    if intro:
        rows += [_escape(intro), ""]
    rows += ["| key | value | meaning |", "| --- | --- | --- |"]
    for key, prop in node.get("properties", {}).items():
        meaning = prop.get("description") or _deref(prop, defs).get("description", "")
        if key in required:
            meaning = f"**required.** {meaning}"
        if key in subtables:
            meaning += f" See `{TABLES[key]}` below."
        rows.append(f"| `{key}` | {_type_text(prop, defs)} | {_escape(meaning)} |")
    if node.get("additionalProperties") is False:
        rows += ["", "Any other key is an error (exit code 2) naming the file and the key."]
    return "\n".join(rows)


def _type_text(node: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name})"
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "oneOf" in node:
        return " or ".join(_type_text(option, defs) for option in node["oneOf"])
    kind = node.get("type", "any")
    if kind == "array":
        return f"array of {_type_text(node.get('items', {}), defs)}"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"table of {_type_text(node['additionalProperties'], defs)}"
    if "pattern" in node:
        return f"{kind} matching `{node['pattern']}`"
    if "minimum" in node:
        return f"{kind} >= {node['minimum']}"
    return kind


def _value_types(defs: dict[str, Any]) -> str:
    rows = ["### Value types", ""]
    for name, node in defs.items():
        if node.get("type") == "object" and "properties" in node:
            continue  # tables, described above
        text = node.get("description", "")
        if "enum" in node:
            text = (text + " One of: " if text else "One of: ") + ", ".join(f"`{v}`" for v in node["enum"])
        else:
            text = f"{_type_text(node, defs)}. {text}".strip()
        rows += [f'<a id="{name}"></a>**{name}**: {_escape(text)}', ""]
    return "\n".join(rows)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")
