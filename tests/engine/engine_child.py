"""A trading-engine process for the kill/restart trials: the real Engine over HTTP (the Kalshi client) against
the test's local exchange, trading fast until it is killed.

    python engine_child.py BASE_URL KEY_ID KEY_PATH TICKER [STEPS]
(the database is PRECOG_DATABASE_URL). The model's probability flips every ~0.7 s so the engine keeps
entering and exiting; with STEPS it reconciles, runs that many cycles and exits cleanly.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from precog.config.loader import load_config
from precog.db.connection import connect, database_url
from precog.engine.core import Engine, Estimate, TrackedMarket
from precog.engine.demo import ensure_demo_methods, simulated_market_settings
from precog.engine.kalshi_venue import KalshiVenue
from precog.venues.kalshi.auth import KalshiSigner
from precog.venues.kalshi.client import AsyncKalshiClient
from precog.venues.kalshi.environments import KalshiEnvironment
from precog.venues.kalshi.ratelimit import tier_limits


class Flipping:
    def estimate(self, model_key: str, ticker: str, now: datetime) -> Estimate:
        up = int(time.time() / 0.7) % 2 == 0
        return Estimate(Decimal("0.75") if up else Decimal("0.25"), "medium")

    def phase(self, ticker: str, now: datetime) -> str:
        return "live"


async def main(base_url: str, key_id: str, key_path: str, ticker: str, steps: int | None) -> None:
    cfg = load_config(use_env=True)
    for level in ("MEDIUM", "LOW"):  # walk fast: the trials are seconds long
        cfg.data["position_management"]["exit_execution"][level]["timeout_seconds"] = 0.4
        cfg.data["position_management"]["exit_execution"][level]["walk_wait_seconds"] = 0.4
    conn = connect(database_url(), autocommit=True)
    env = KalshiEnvironment("local", base_url, base_url.replace("http", "ws"))
    client = AsyncKalshiClient(env, signer=KalshiSigner.from_files(key_id, key_path),
                               rate_limits=tier_limits("unlimited"))
    venue = KalshiVenue(client, platform_id="local")  # account_ref: host + a hash of the key id
    methods = [m for m in ensure_demo_methods(conn) if m.phase == "live"]
    engine = Engine(conn, venue, config=cfg, mode="paper", kind="test", methods=methods, probabilities=Flipping(),
                    markets=[TrackedMarket(ticker, ticker.rsplit("-", 1)[0], "nfl")],
                    clock=lambda: datetime.now(UTC), initial_cash=Decimal("10000"), decision_interval_s=0.3,
                    reconcile_cash=True, risk_settings=simulated_market_settings(cfg))
    await engine.start()
    print("started", flush=True)
    n = 0
    while steps is None or n < steps:
        await engine.step()
        n += 1
        await asyncio.sleep(0.02)
    await engine.stop()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4],
                     int(sys.argv[5]) if len(sys.argv) > 5 else None))
