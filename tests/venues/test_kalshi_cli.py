"""`precog kalshi ...` against the local exchange: through the real entry point (a subprocess, as a
user runs it) for the headline command and the error lines, in-process (the same Typer app) for the
rest so the suite stays fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from typing import Any

from typer.testing import CliRunner

from precog.cli.main import app


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1", **(env or {})})
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result


def _precog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    full = {**base, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "precog", *args], capture_output=True, text=True, env=full,
                          timeout=60, check=False)


def _keys(ex: Any) -> dict[str, str]:
    return {"KALSHI_API_KEY_ID": ex.key_id, "KALSHI_PRIVATE_KEY_PATH": str(ex.private_key_path)}


def test_markets_json_through_the_real_entry_point(local_exchange: Any) -> None:
    result = _precog("kalshi", "markets", "--env", "local", "--base-url", local_exchange.base_url, "--json",
                     "--series", local_exchange.series_ticker, "--status", "open", "--limit", "10")
    assert result.returncode == 0, result.stderr
    markets = json.loads(result.stdout)
    assert {m["ticker"] for m in markets} == set(local_exchange.tickers)
    m = markets[0]
    assert m["status"] == "open" and m["venue_status"] == "active"
    assert isinstance(m["yes_bid"], str) and Decimal(m["yes_ask"]) <= 1  # Decimals as exact strings


def test_market_orderbook_and_account_commands(local_exchange: Any) -> None:
    ticker = local_exchange.tickers[0]
    local_exchange.counterparty_order(ticker, "yes", "buy", 5, "0.42")
    local_exchange.counterparty_order(ticker, "no", "buy", 3, "0.56")
    url = ["--env", "local", "--base-url", local_exchange.base_url]

    book = _invoke("kalshi", "orderbook", ticker, "--depth", "5", "--json", *url)
    data = json.loads(book.stdout)
    top = data["yes_bids"][0]
    assert (Decimal(top["price"]), Decimal(top["quantity"])) == (Decimal("0.42"), 5)
    assert Decimal(data["yes_ask"]) == Decimal("0.44") and Decimal(data["spread"]) == Decimal("0.02")

    table = _invoke("kalshi", "orderbook", ticker, *url)
    assert "0.42" in table.stdout and "spread 0.0200" in table.stdout, table.stdout

    market = _invoke("kalshi", "market", ticker, *url)
    assert ticker in market.stdout and "0.4200 / 0.4400" in market.stdout, market.stdout

    balance = _invoke("kalshi", "balance", "--json", *url, env=_keys(local_exchange))
    assert Decimal(json.loads(balance.stdout)["balance"]) == Decimal("1000")
    assert "$1,000.00" in _invoke("kalshi", "balance", *url, env=_keys(local_exchange)).stdout

    # buy 3 YES from the resting NO bid (a YES ask at 0.44): a fill, a position, an order
    local_exchange.admin.place_order(local_exchange.user_id, ticker, "yes", "buy", 3, price_dollars="0.44")
    for command, key in (("positions", "position"), ("fills", "count"), ("orders", "fill_count")):
        rows = json.loads(_invoke("kalshi", command, "--json", *url, env=_keys(local_exchange)).stdout)
        assert rows and Decimal(rows[0][key]) == 3, (command, rows)
        assert ticker in _invoke("kalshi", command, *url, env=_keys(local_exchange)).stdout  # the table too

    local_exchange.settle(ticker, "1")
    settled = _invoke("kalshi", "settlements", "--json", *url, env=_keys(local_exchange))
    assert Decimal(json.loads(settled.stdout)[0]["revenue"]) == 3
    assert "$3.00" in _invoke("kalshi", "settlements", *url, env=_keys(local_exchange)).stdout


def test_errors_are_one_readable_line(local_exchange: Any, tmp_path: Any) -> None:
    url = ["--env", "local", "--base-url", local_exchange.base_url]
    no_key = _precog("kalshi", "balance", *url)
    assert no_key.returncode == 1 and "KALSHI_API_KEY_ID" in no_key.stderr and "Traceback" not in no_key.stderr

    bad_key = _precog("kalshi", "balance", *url, env={"KALSHI_API_KEY_ID": "x",
                                                       "KALSHI_PRIVATE_KEY_PATH": str(tmp_path / "missing.pem")})
    assert bad_key.returncode == 1 and "missing.pem" in bad_key.stderr and "does not exist" in bad_key.stderr

    unknown = _precog("kalshi", "market", "NOPE", *url)
    assert unknown.returncode == 1 and "404" in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1

    down = _precog("kalshi", "markets", "--env", "local", "--base-url", "http://127.0.0.1:9")
    assert down.returncode == 1 and "127.0.0.1:9" in down.stderr and "Traceback" not in down.stderr

    bad_status = CliRunner().invoke(app, ["kalshi", "markets", "--status", "sideways", *url])
    assert bad_status.exit_code != 0 and "--status" in str(bad_status.exception)
