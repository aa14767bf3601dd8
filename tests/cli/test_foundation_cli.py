"""The foundation commands through the real `precog` entry point."""

from __future__ import annotations

import json

import precog


def test_version(precog_cli):
    result = precog_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"precog {precog.__version__}"


def test_db_status_url_and_migrate(precog_cli, db_url):
    status = json.loads(precog_cli("db", "status", "--json").stdout)
    assert status["pending"] == [] and status["embedded"] is False
    assert all(m["applied"] and m["checksum_ok"] for m in status["migrations"])
    assert precog_cli("db", "url").stdout.strip().startswith("postgresql://")
    assert "up to date" in precog_cli("db", "migrate").stdout


def test_db_reset_requires_yes_and_recreates(precog_cli, conn):
    refused = precog_cli("db", "reset")
    assert refused.returncode == 1 and "--yes" in refused.stderr and "Traceback" not in refused.stderr
    conn.execute("INSERT INTO alerts (alert_type, severity, component, message) VALUES ('t','low','c','m')")
    conn.commit()
    conn.close()
    done = precog_cli("db", "reset", "--yes")
    assert done.returncode == 0, done.stderr
    import psycopg

    with psycopg.connect(json.loads(precog_cli("db", "status", "--json").stdout)["database"].replace("***", "")) as c2:
        assert c2.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
        assert c2.execute("SELECT count(*) FROM teams").fetchone()[0] == 32


def test_db_reset_recreates_a_database_whose_name_needs_quoting(pg_admin_url, template_db_url, precog_cli):
    # the name comes from the user's URL: it is quoted as an identifier, never pasted into the statement
    from urllib.parse import urlsplit

    import psycopg
    from psycopg import sql

    from precog.db.embedded import with_database

    name = 'precog_odd"_name'  # a double quote closed the old statement's quoted identifier
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        c.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name),
                                                                   sql.Identifier(urlsplit(template_db_url).path[1:])))
    url = with_database(pg_admin_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("INSERT INTO alerts (alert_type, severity, component, message) VALUES ('t','low','c','m')")
        done = precog_cli("db", "reset", "--yes", env={"PRECOG_DATABASE_URL": url})
        assert done.returncode == 0, done.stderr
        with psycopg.connect(url) as c:
            assert c.execute("SELECT current_database()").fetchone()[0] == name
            assert c.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_config_set_get_unset_round_trip(precog_cli):
    r = precog_cli("config", "set", "trading.edges.min_edge_global", "0.07", "--reason", "thin books", "--expires", "2h")
    assert r.returncode == 0, r.stderr
    got = json.loads(precog_cli("config", "get", "trading.edges.min_edge_global", "--json").stdout)
    assert got["value"] == "0.07" and got["source"].startswith("database override")
    listed = json.loads(precog_cli("config", "overrides", "--json").stdout)
    assert listed[0]["reason"] == "thin books" and listed[0]["expires_at"]
    assert precog_cli("config", "unset", "trading.edges.min_edge_global").returncode == 0
    got = json.loads(precog_cli("config", "get", "trading.edges.min_edge_global", "--json").stdout)
    assert got["value"] == "0.05" and got["source"] == "default"


def test_config_errors_are_one_line(precog_cli, tmp_path):
    bad = precog_cli("config", "set", "trading.account.max_trades_per_day", "many", "--reason", "x")
    assert bad.returncode == 1 and bad.stderr.count("\n") <= 2 and "not a valid integer" in bad.stderr
    (tmp_path / "position_management.yaml").write_text("trailing_stop:\n  floor_distance: 0.5\n")
    invalid = precog_cli("config", "validate", "--dir", str(tmp_path))
    assert invalid.returncode == 1
    assert "position_management.yaml" in invalid.stderr and "trailing_stop.floor_distance = 0.5" in invalid.stderr
    assert "<= 0.05" in invalid.stderr and "Traceback" not in invalid.stderr
    assert precog_cli("config", "validate").returncode == 0


def test_config_set_takes_a_fraction_for_a_decimal_key_with_a_whole_default(precog_cli):
    # worker_poll_seconds is a decimal number of seconds whose shipped default is written as 1
    ok = precog_cli("config", "set", "system.notifications.worker_poll_seconds", "0.5", "--reason", "faster")
    assert ok.returncode == 0, ok.stderr
    got = json.loads(precog_cli("config", "get", "system.notifications.worker_poll_seconds", "--json").stdout)
    assert got["value"] == "0.5"
    # a count stays a whole number: the schema refuses a fraction, naming the key
    bad = precog_cli("config", "set", "position_management.portfolio.max_open_positions", "2.5", "--reason", "x")
    assert bad.returncode == 1 and "max_open_positions" in bad.stderr and "Traceback" not in bad.stderr


def test_config_show_json_keeps_decimals_exact(precog_cli):
    data = json.loads(precog_cli("config", "show", "trading.account", "--json").stdout)
    assert data["daily_loss_limit_dollars"] == "500.00"


def test_health_json(precog_cli):
    r = precog_cli("health", "--json")
    data = json.loads(r.stdout)
    checks = {c["check"]: c for c in data["checks"]}
    assert checks["database"]["ok"] and checks["migrations"]["ok"] and checks["config"]["ok"]


def test_unreachable_external_database_is_one_clear_line(precog_cli):
    r = precog_cli("db", "status", env={"PRECOG_DATABASE_URL": "postgresql://u:secretpw@127.0.0.1:1/none"})
    assert r.returncode == 1
    assert "cannot connect to the database" in r.stderr and "Traceback" not in r.stderr
    assert "secretpw" not in r.stderr and "***" in r.stderr


def test_health_thresholds_come_from_system_yaml(precog_cli, tmp_path):
    """system.health_checks.min_free_disk_gb / max_memory_pct were accepted and unread (5 GB was fixed in code,
    memory not checked): a threshold no machine meets fails the check and the command."""
    (tmp_path / "system.yaml").write_text("health_checks:\n  min_free_disk_gb: 100000\n  max_memory_pct: 1\n")
    r = precog_cli("health", "--json", env={"PRECOG_CONFIG_DIR": str(tmp_path)})
    assert r.returncode == 1
    checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
    assert not checks["disk"]["ok"] and "minimum 100000 GB" in checks["disk"]["detail"]
    assert not checks["memory"]["ok"] and "maximum 1%" in checks["memory"]["detail"]


def test_memory_in_use_is_read_from_the_kernel(tmp_path):
    from precog.cli.health import memory_used_pct

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n")
    assert memory_used_pct(meminfo) == 75
    assert memory_used_pct(tmp_path / "missing") is None
