"""Find secret values where they must never be: captured logs/output, every text column of the database, and
the files under a directory (PRECOG_HOME).

    secrets = SecretSet.of({"SMTP_PASSWORD": "...", "KALSHI_PRIVATE_KEY": pem_text})
    findings = scan_text("stderr of precog run", text, secrets) + scan_database(conn, secrets) + scan_tree(home, secrets)

Each secret is searched as written and in the forms it could be leaked in: URL-encoded, and for a PEM key
every base64 line of its body (a key printed partly still leaks). A finding names the place and the secret's
NAME, never its value, so the report itself is safe to print.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

_MIN_LEN = 8
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea")


@dataclass(frozen=True)
class Finding:
    where: str  # "table.column row 3", "file logs/alerts.jsonl", "stderr of ..."
    secret: str  # the secret's name

    def __str__(self) -> str:
        return f"{self.secret} found in {self.where}"


@dataclass(frozen=True)
class SecretSet:
    needles: tuple[tuple[str, str], ...]  # (name, text to look for)

    @classmethod
    def of(cls, secrets: Mapping[str, str]) -> SecretSet:
        needles: list[tuple[str, str]] = []
        for name, value in secrets.items():
            value = value.strip()
            if len(value) < _MIN_LEN:
                raise ValueError(f"secret {name} is shorter than {_MIN_LEN} characters: too weak a needle")
            forms = {value, quote(value, safe="")}
            if "PRIVATE KEY-----" in value:
                body = [ln.strip() for ln in value.splitlines() if ln.strip() and "-----" not in ln]
                forms.update(ln for ln in body if len(ln) >= 24)
                forms.add("".join(body)[:64])
            if "://" in value:  # a secret-bearing URL: its path (Slack's token) leaks it too
                path = urlsplit(value).path.strip("/")
                if len(path) >= _MIN_LEN:
                    forms.add(path)
            needles.extend((name, form) for form in sorted(forms))
        return cls(tuple(needles))

    def names_in(self, text: str) -> list[str]:
        return sorted({name for name, needle in self.needles if needle in text})


def scan_text(where: str, text: str, secrets: SecretSet) -> list[Finding]:
    return [Finding(where, name) for name in secrets.names_in(text)]


def text_columns(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    """(schema, table, column) of every text-like column of every user table."""
    rows = conn.execute(
        "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema') "
        "AND c.data_type = ANY(%s) ORDER BY 1, 2, 3", (list(TEXT_TYPES),)).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def scan_database(conn: psycopg.Connection[Any], secrets: SecretSet) -> list[Finding]:
    """Every text/varchar/json/jsonb/bytea value of every table, compared as text (a pg_dump-like sweep)."""
    findings: list[Finding] = []
    for schema, table, column in text_columns(conn):
        col = sql.Identifier(column)
        query = sql.SQL("SELECT {col}::text FROM {tbl} WHERE {col} IS NOT NULL").format(
            col=col, tbl=sql.Identifier(schema, table))
        for (value,) in conn.execute(query):
            for name in secrets.names_in(value):
                findings.append(Finding(f"database {schema}.{table}.{column}", name))
    return sorted(set(findings), key=str)


def scan_tree(root: Path, secrets: SecretSet, *, skip: Iterable[Path] = ()) -> list[Finding]:
    """Every file under `root` (binary files too, read as UTF-8 with replacement)."""
    skipped = {p.resolve() for p in skip}
    findings: list[Finding] = []
    if not root.exists():
        return findings
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.resolve() in skipped:
            continue
        try:
            text = path.read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        findings.extend(scan_text(f"file {path.relative_to(root)}", text, secrets))
    return findings


def looks_like_pem(text: str) -> bool:
    return bool(re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text))
