"""Configuration loading with precedence and validation.

Precedence (highest first): active, unexpired DB override (`config_overrides`) > environment variable >
user YAML directory (`PRECOG_CONFIG_DIR`) > packaged default. A user file holds only the keys it changes
and is merged over the packaged default of the same name.

Keys are dotted paths whose first part is the file: `trading.account.daily_loss_limit_dollars`.
Environment variables: `PRECOG_CFG__TRADING__ACCOUNT__DAILY_LOSS_LIMIT_DOLLARS=300` (double underscores
separate the parts), plus the aliases in ENV_ALIASES.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ValidationError

from precog.config.errors import ConfigError
from precog.config.schema import CONFIG_FILES, FILE_MODELS, OPEN_MAPPINGS, retired_reason
from precog.config.yamlio import load_yaml_file

ENV_PREFIX = "PRECOG_CFG__"
ENV_ALIASES: dict[str, str] = {
    "TRADING_ENV": "system.environment.active",
    "LOG_LEVEL": "system.logging.level",
}
_MISSING = object()


def defaults_dir() -> Path:
    return Path(str(resources.files("precog.config") / "defaults"))


def user_config_dir() -> Path | None:
    env = os.environ.get("PRECOG_CONFIG_DIR", "").strip()
    return Path(env).expanduser() if env else None


@dataclass
class Config:
    """The effective configuration: one merged mapping per file, and where each overridden key came from."""

    data: dict[str, dict[str, Any]]
    sources: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: Any = _MISSING) -> Any:
        try:
            return _lookup(self.data, key)
        except KeyError:
            if default is _MISSING:
                raise ConfigError(_unknown_key_message(key)) from None
            return default

    def section(self, name: str) -> dict[str, Any]:
        return self.data[name]

    def source_of(self, key: str) -> str:
        parts = key.split(".")
        for i in range(len(parts), 0, -1):
            found = self.sources.get(".".join(parts[:i]))
            if found:
                return found
        return "default"

    def flat(self) -> dict[str, Any]:
        return dict(_flatten(self.data))


def _unknown_key_message(key: str) -> str:
    reason = retired_reason(key)
    if reason is not None:
        return f"configuration key {key!r} is not used by Precog: {reason}"
    return f"unknown configuration key {key!r}"


def _retired_within(path: str, value: Any) -> tuple[str, str] | None:
    """The first retired key at `path` or below it in `value` (a user's block), with its reason."""
    reason = retired_reason(path)
    if reason is not None:
        return path, reason
    if isinstance(value, Mapping):
        for key, sub in value.items():
            found = _retired_within(f"{path}.{key}", sub)
            if found is not None:
                return found
    return None


def _lookup(data: Mapping[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            raise KeyError(key)
    return node


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in data.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            yield from _flatten(v, path)
        else:
            yield path, v


def _is_open(path: str) -> bool:
    if path in OPEN_MAPPINGS:
        return True
    parts = path.split(".")
    for pattern in OPEN_MAPPINGS:
        p = pattern.split(".")
        if len(p) == len(parts) and all(a == "*" or a == b for a, b in zip(p, parts, strict=True)):
            return True
    return False


def _merge(base: dict[str, Any], over: Mapping[str, Any], path: str, source: str,
           sources: dict[str, str], *, open_entry: bool = False, wrong_types: list[str] | None = None) -> None:
    """Deep-merge `over` into `base`, refusing keys the defaults do not know (typos) outside open mappings.

    Open mappings merge key by key too (changing one league or sport keeps the others and the entry's other
    keys); only there, and inside their entries (user-shaped blocks), are new keys allowed.
    """
    is_open = open_entry or _is_open(path)
    for key, value in over.items():
        key = str(key)
        sub = f"{path}.{key}"
        if key not in base and not is_open:
            retired = _retired_within(sub, value)
            if retired is not None:
                raise ConfigError(f"{source}: key {retired[0].split('.', 1)[1]!r} is not used by Precog: {retired[1]}")
            known = ", ".join(sorted(map(str, base))) or "none"
            raise ConfigError(f"{source}: unknown key {sub.split('.', 1)[1]!r} (known keys here: {known})")
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, sub, source, sources, open_entry=is_open, wrong_types=wrong_types)
        else:
            problem = _type_problem(base.get(key), value, sub, source)
            if problem is not None and wrong_types is not None and not _modelled_by_schema(sub):
                wrong_types.append(problem)
            base[key] = copy.deepcopy(value)
            sources[sub] = source


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | Decimal):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    return "mapping" if isinstance(value, Mapping) else type(value).__name__


def _modelled_by_schema(path: str) -> bool:
    """Whether the schema declares this key (or a typed mapping or list above it): the schema then decides
    its type, which may differ from the default's (`reset.rapid_loss: 1800` or `manual`)."""
    file, _, rest = path.partition(".")
    node: Any = FILE_MODELS.get(file)
    for part in rest.split("."):
        if get_origin(node) is dict:  # a typed mapping (leagues: dict[str, League]): `part` is one of its keys
            node = get_args(node)[1]
            continue
        candidates = (node, *getattr(node, "__args__", ()))
        models = [a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)]
        if not models:
            return node is not None
        model = models[0]
        if part in model.model_fields:
            node = model.model_fields[part].annotation
        elif "__pydantic_extra__" in get_type_hints(model):  # typed open keys (sports, leagues)
            node = getattr(get_type_hints(model)["__pydantic_extra__"], "__args__", (None,))[-1]
        else:
            return False
    return True


def _type_problem(default: Any, value: Any, path: str, source: str) -> str | None:
    """A file's value of a true/false, number or list key has that type (docs/configuration.md: "300" in quotes,
    true for a number or "false" for a true/false key is refused, not converted), also for keys the schema
    does not model, whose readers would convert it (bool("false") is True). null is left to the schema."""
    if default is None or value is None or isinstance(default, str | Mapping) or _kind(default) == _kind(value):
        return None
    shown = _DECIMAL_REPR.sub(r"\1", repr(value))
    return (f"{source}: {path.split('.', 1)[1]} = {shown} is invalid: must be "
            f"{'a ' if _kind(default) != 'true/false' else ''}{_kind(default)}, not {_kind(value)}")


def coerce(key: str, text: str, current: Any) -> Any:
    """Parse a string (env var, CLI) into the type of the key's current value. Refuses a wrong type."""
    def fail(expected: str) -> ConfigError:
        return ConfigError(f"{key}: {text!r} is not a valid {expected}")

    if isinstance(current, bool):
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise fail("boolean (true/false)")
    if isinstance(current, int):
        try:
            return int(text.strip())
        except ValueError:
            pass
        # a decimal key whose default happens to be whole (worker_poll_seconds: 1): the schema, which the
        # changed configuration is validated against, decides whether a fraction is allowed here
        try:
            fraction = Decimal(text.strip())
        except InvalidOperation:
            raise fail("integer") from None
        if not fraction.is_finite():
            raise fail("integer")
        return fraction
    if isinstance(current, Decimal):
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            raise fail("decimal number") from None
        if not value.is_finite():
            raise fail("finite decimal number")
        return value
    if isinstance(current, list | dict):
        try:
            parsed = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError:
            raise fail("JSON " + ("list" if isinstance(current, list) else "object")) from None
        if not isinstance(parsed, type(current)):
            raise fail("JSON " + ("list" if isinstance(current, list) else "object"))
        return parsed
    return text


def data_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, list | dict):
        return "json"
    return "string"


def decode_override(value: Any, data_type: str) -> Any:
    """Override values are stored as JSON {"value": ...} with Decimals as strings."""
    if data_type in ("decimal", "float"):
        return Decimal(str(value))
    if data_type == "int":
        return int(value)
    if data_type == "bool":
        return bool(value)
    return value


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def _range_hint(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    node: Any = model
    info = None
    for part in loc:
        if isinstance(node, type) and issubclass(node, BaseModel) and isinstance(part, str) and part in node.model_fields:
            info = node.model_fields[part]
            node = info.annotation
        elif isinstance(node, type) and issubclass(node, BaseModel) and "__pydantic_extra__" in get_type_hints(node):
            node = getattr(get_type_hints(node)["__pydantic_extra__"], "__args__", (None,))[-1]  # typed open keys (sports)
            info = None
        else:
            args = getattr(node, "__args__", ())
            node = args[-1] if args else None
            info = None
    if info is None:
        return ""
    bounds: dict[str, Any] = {}
    for meta in info.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            if getattr(meta, attr, None) is not None:
                bounds[attr] = getattr(meta, attr)
    if not bounds:
        return ""
    lo = f">= {bounds['ge']}" if "ge" in bounds else (f"> {bounds['gt']}" if "gt" in bounds else "")
    hi = f"<= {bounds['le']}" if "le" in bounds else (f"< {bounds['lt']}" if "lt" in bounds else "")
    return " (allowed: " + " and ".join(x for x in (lo, hi) if x) + ")"


_DECIMAL_REPR = re.compile(r"Decimal\('([^']*)'\)")


def validate_file(name: str, data: dict[str, Any], file_for_key: Any) -> None:
    model = FILE_MODELS[name]
    try:
        model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            dotted = ".".join(str(p) for p in loc)
            where = file_for_key(f"{name}.{dotted}")
            if err["type"] == "missing":
                problems.append(f"{where}: key {dotted!r} is required")
                continue
            value = err.get("input")
            shown = str(value) if isinstance(value, Decimal | int) else _DECIMAL_REPR.sub(r"\1", repr(value))
            message = _DECIMAL_REPR.sub(r"\1", err["msg"])  # "Decimal('0.50')" -> "0.50", as the file writes it
            # a whole block (exit_execution) is named, not printed: its message names the key inside it
            shown = f" = {shown}" if len(shown) <= 200 else ""
            problems.append(f"{where}: {dotted}{shown} is invalid: {message}{_range_hint(model, loc)}")
        raise ConfigError("; ".join(problems)) from None


def active_overrides(db_url: str) -> list[tuple[int, str, Any, str]]:
    from precog.db.connection import connect

    with connect(db_url) as conn:
        rows = conn.execute(
            "SELECT override_id, config_key, override_value, data_type FROM config_overrides "
            "WHERE active AND (expires_at IS NULL OR expires_at > now()) ORDER BY applied_at"
        ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def load_config(config_dir: Path | None = None, *, db_url: str | None = None, use_env: bool = True,
                use_overrides: bool = True, environ: Mapping[str, str] | None = None) -> Config:
    """Load, merge and validate all seven files. Raises ConfigError naming file, key, value and range."""
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}
    default_dir = defaults_dir()
    data: dict[str, dict[str, Any]] = {name: load_yaml_file(default_dir / f"{name}.yaml") for name in CONFIG_FILES}

    wrong_types: list[str] = []  # values of the wrong type for keys the schema does not model
    user_dir = config_dir if config_dir is not None else user_config_dir()
    if user_dir is not None:
        if not user_dir.is_dir():
            raise ConfigError(f"configuration directory {user_dir} "
                              f"{'is not a directory' if user_dir.exists() else 'does not exist'}")
        for path in sorted(user_dir.glob("*.yaml")) + sorted(user_dir.glob("*.yml")):
            name = path.stem
            if path.suffix == ".yml" and path.with_suffix(".yaml").exists():
                # both would be merged, the .yml silently over the .yaml
                raise ConfigError(f"{path}: {path.with_suffix('.yaml').name} is in the same directory; keep one")
            if name not in data:
                raise ConfigError(f"{path}: unknown configuration file (expected one of: {', '.join(CONFIG_FILES)})")
            _merge(data[name], load_yaml_file(path), name, str(path), sources, wrong_types=wrong_types)

    def current(key: str, origin: str) -> Any:
        try:
            return _lookup(data, key)
        except KeyError:
            raise ConfigError(f"{origin}: {_unknown_key_message(key)}") from None

    if use_env:
        for var, value in env.items():
            key = None
            if var.startswith(ENV_PREFIX):
                key = ".".join(p.lower() for p in var[len(ENV_PREFIX):].split("__"))
            elif var in ENV_ALIASES:
                key = ENV_ALIASES[var]
            if key is None:
                continue
            origin = f"environment variable {var}"
            _set(data, key, coerce(key, value, current(key, origin)))
            sources[key] = origin

    if use_overrides and db_url:
        for override_id, key, stored, data_type in active_overrides(db_url):
            origin = f"database override #{override_id}"
            current(key, origin)
            raw = stored.get("value") if isinstance(stored, dict) else stored
            _set(data, key, decode_override(raw, data_type))
            sources[key] = origin

    def file_for_key(key: str) -> str:
        src = Config(data, sources).source_of(key)
        if src == "default":
            # an error about a whole block (weights that must sum to 1) names where a key inside it was set
            inner = [s for k, s in sources.items() if k.startswith(key + ".")]
            return inner[-1] if inner else str(default_dir / f"{key.split('.')[0]}.yaml")
        return src

    for name in CONFIG_FILES:
        validate_file(name, data[name], file_for_key)
    if wrong_types:
        raise ConfigError("; ".join(wrong_types))
    return Config(data, sources)
