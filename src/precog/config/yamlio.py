"""YAML reading where every decimal number becomes an exact Decimal (never a binary float)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from precog.config.errors import ConfigError


class _DecimalLoader(yaml.SafeLoader):
    pass


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")
    lowered = text.lower()
    if lowered in (".inf", "+.inf", "-.inf", ".nan"):
        raise ConfigError(f"{text!r} is not an allowed number (infinite/NaN)")
    try:
        return Decimal(text)
    except InvalidOperation:  # YAML 1.1 floats include forms Decimal cannot read (1.2.3, 190:20:30.15)
        raise ConfigError(f"{text!r} is not a valid decimal number") from None


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    """A mapping whose keys are unique: YAML itself keeps the last of two `account:` blocks and drops the first
    without a word."""
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *defaults` then a key of its own is an override, not a duplicate
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | Decimal | bool | None):
            continue  # an unhashable key: construct_mapping below says so
        if key in seen:
            mark = key_node.start_mark
            raise ConfigError(f"line {mark.line + 1}: key {key!r} appears twice in the same block "
                              f"(first on line {seen[key] + 1}); only one can apply")
        seen[key] = key_node.start_mark.line
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=True)


_DecimalLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def load_yaml_text(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.load(text, Loader=_DecimalLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}:{where}: invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def load_yaml_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): save the file as UTF-8") from exc
    return load_yaml_text(text, str(path))
