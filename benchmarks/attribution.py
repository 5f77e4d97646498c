"""Attribution speed: rule models (orders/s), Markov and Shapley on 100k journeys x 50 channels,
and ChannelAttribution's markov_model on the same journeys.

    .venv/bin/python -m benchmarks.attribution [--journeys 100000] [--channels 50]

Writes benchmarks/results/attribution.json. Times are the best and the median of --repeat runs
(wall clock, one thread).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine_info
from storeloop.attribution import models
from storeloop.attribution.models import JourneySet, Touch

RESULTS = Path(__file__).resolve().parent / "results" / "attribution.json"
PLACED = datetime(2026, 5, 31, tzinfo=UTC)


def generate(journeys: int, channels: int, seed: int) -> tuple[list[list[int]], np.ndarray]:
    """Journeys of 1-10 touches over ``channels`` channels with skewed popularity; a journey
    converts with a probability that grows with the strength of the channels it saw."""
    generator = np.random.default_rng(seed)
    popularity = generator.dirichlet(np.full(channels, 0.6))
    strength = generator.uniform(0.01, 0.15, channels)
    lengths = np.minimum(generator.geometric(0.45, journeys), 10)
    flat = generator.choice(channels, size=int(lengths.sum()), p=popularity)
    paths: list[list[int]] = []
    converted = np.zeros(journeys)
    position = 0
    for index, length in enumerate(lengths.tolist()):
        path = flat[position : position + length].tolist()
        position += length
        paths.append(path)
        converted[index] = generator.random() < 1 - np.prod(1 - strength[path])
    return paths, converted


def timed(function: Callable[[], Any], repeat: int) -> tuple[dict[str, float], Any]:
    durations = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        durations.append(time.perf_counter() - started)
    return {"best_s": min(durations), "median_s": statistics.median(durations)}, result


def rule_model_rate(
    paths: list[list[int]], channels: int, orders: int, repeat: int
) -> dict[str, Any]:
    names = [f"channel-{index}" for index in range(channels)]
    journeys = []
    for order_index, path in enumerate(paths[:orders]):
        touches = [
            Touch(
                id=uuid.UUID(int=order_index * 16 + position),
                key=f"{order_index}:{position}",
                channel=names[channel],
                occurred_at=PLACED - timedelta(days=len(path) - position, hours=1),
            )
            for position, channel in enumerate(path)
        ]
        journeys.append((uuid.UUID(int=order_index), touches))

    def run() -> int:
        lines = 0
        for order_id, touches in journeys:
            journey = models.select_journey(
                order_id, PLACED, touches, lookback_days=30, code_precedence=True
            )
            for model in models.RULE_MODELS:
                lines += len(models.order_credits(journey, model, PLACED, half_life_days=7))
        return lines

    timing, _ = timed(run, repeat)
    return {
        "orders": len(journeys),
        "models": list(models.RULE_MODELS),
        **timing,
        "orders_per_s_all_rule_models": round(len(journeys) / timing["best_s"]),
    }


def service_rate(orders: int, seed: int) -> dict[str, Any]:
    """attribute_stale_orders on a migrated SQLite database: ``orders`` orders with 1-5
    touchpoints each, as many visitors who never ordered, all models written."""
    import os
    import tempfile

    from sqlalchemy import func, select

    from storeloop import migrate
    from storeloop.attribution.service import attribute_stale_orders
    from storeloop.db import create_db_engine, make_session_factory, session_scope
    from storeloop.kit.ids import new_id
    from storeloop.models import AttributionCredit, Order, Touchpoint
    from storeloop.workspaces.keyring import Keyring
    from storeloop.workspaces.service import create_workspace

    generator = np.random.default_rng(seed)
    channels = ["Organic Social", "Influencer", "Email", "Paid Search", "Referral", "Direct"]
    with tempfile.TemporaryDirectory() as directory:
        engine = create_db_engine(f"sqlite:///{directory}/bench.db")
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        master_key = os.urandom(32)
        keyring = Keyring(master_key, factory)
        with session_scope(factory) as session:
            workspace_id = create_workspace(session, master_key, "Bench").id
            touchpoints: list[dict[str, Any]] = []
            order_rows: list[dict[str, Any]] = []
            for index in range(orders * 2):
                anonymous_id = f"visitor-{index}"
                for position in range(int(generator.integers(1, 6))):
                    touchpoints.append(
                        {
                            "id": new_id(),
                            "workspace_id": workspace_id,
                            "dedupe_key": f"bench:{index}:{position}",
                            "anonymous_id": anonymous_id,
                            "occurred_at": PLACED - timedelta(days=float(generator.uniform(0, 40))),
                            "kind": "utm",
                            "channel": channels[int(generator.integers(0, len(channels)))],
                            "is_bot": False,
                        }
                    )
                if index < orders:
                    order_rows.append(
                        {
                            "id": new_id(),
                            "workspace_id": workspace_id,
                            "external_id": f"B-{index}",
                            "source": "event",
                            "anonymous_id": anonymous_id,
                            "currency": "EUR",
                            "subtotal": 50,
                            "discount_total": 0,
                            "shipping": 0,
                            "tax": 0,
                            "total": 50,
                            "refunded_total": 0,
                            "status": "paid",
                            "discount_codes": [],
                            "marketing": {},
                            "placed_at": PLACED,
                            "source_updated_at": PLACED,
                            "attribution_stale": True,
                        }
                    )
            session.execute(Touchpoint.__table__.insert(), touchpoints)
            session.execute(Order.__table__.insert(), order_rows)
        started = time.perf_counter()
        handled = 0
        while True:
            with session_scope(factory) as session:
                done = attribute_stale_orders(session, keyring)
            if not done:
                break
            handled += done
        duration = time.perf_counter() - started
        with factory() as session:
            credit_rows = session.scalar(select(func.count()).select_from(AttributionCredit))
        engine.dispose()
    return {
        "backend": "sqlite",
        "orders": handled,
        "touchpoints": len(touchpoints),
        "credit_rows": credit_rows,
        "seconds": duration,
        "orders_per_s_all_models": round(handled / duration),
    }


def channelattribution(paths: list[list[int]], converted: np.ndarray) -> dict[str, Any] | None:
    try:
        import ChannelAttribution as ca
        import pandas as pd
    except ImportError:
        return None
    conversions: Counter[str] = Counter()
    nulls: Counter[str] = Counter()
    for path, outcome in zip(paths, converted, strict=True):
        collapsed = [channel for i, channel in enumerate(path) if i == 0 or path[i - 1] != channel]
        text = " > ".join(f"c{channel}" for channel in collapsed)
        (conversions if outcome else nulls)[text] += 1
    keys = sorted(set(conversions) | set(nulls))
    frame = pd.DataFrame(
        {
            "path": keys,
            "total_conversions": [conversions[key] for key in keys],
            "total_null": [nulls[key] for key in keys],
        }
    )
    started = time.perf_counter()
    result = ca.markov_model(
        frame, "path", "total_conversions", var_null="total_null", order=1, verbose=0, flg_pro=False
    )
    duration = time.perf_counter() - started
    shares = dict(zip(result["channel_name"], result["total_conversions"], strict=True))
    total = sum(shares.values())
    return {
        "seconds": duration,
        "unique_paths": len(keys),
        "shares": {name: value / total for name, value in shares.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--journeys", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--rule-orders", type=int, default=20_000)
    parser.add_argument("--permutations", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--service-orders", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261122)
    options = parser.parse_args()

    paths, converted = generate(options.journeys, options.channels, options.seed)
    journeys = JourneySet(
        channels=tuple(f"c{index}" for index in range(options.channels)),
        paths=paths,
        conversions=converted.astype(np.float64),
        nulls=(1 - converted).astype(np.float64),
    )
    markov_time, effects = timed(lambda: models.markov_removal_effects(journeys), options.repeat)
    shapley_time, values = timed(lambda: models.shapley_values(journeys), options.repeat)
    sampled_time, sampled = timed(
        lambda: models.shapley_values_sampled(journeys, options.permutations, seed=0), 1
    )
    markov_shares = effects / effects.sum()
    shapley_shares = values / values.sum()
    sampled_shares = sampled / sampled.sum()
    rules = rule_model_rate(
        paths, options.channels, options.rule_orders, max(options.repeat // 2, 1)
    )
    reference = channelattribution(paths, converted)
    service = service_rate(options.service_orders, options.seed)
    agreement = None
    if reference is not None:
        theirs = np.array(
            [reference["shares"].get(name, 0.0) for name in journeys.channels], dtype=np.float64
        )
        agreement = {
            "max_abs_share_difference": float(np.abs(theirs - markov_shares).max()),
            "sum_abs_share_difference": float(np.abs(theirs - markov_shares).sum()),
        }
    result = {
        "machine": machine_info(note="measured while other test suites ran on the machine"),
        "journeys": options.journeys,
        "channels": options.channels,
        "converting_journeys": int(converted.sum()),
        "touchpoints": int(sum(len(path) for path in paths)),
        "markov_order1_exact": markov_time,
        "shapley_exact_closed_form": shapley_time,
        "shapley_sampled": {
            "permutations": options.permutations,
            "seconds": sampled_time["best_s"],
            "max_abs_share_difference_vs_exact": float(
                np.abs(sampled_shares - shapley_shares).max()
            ),
        },
        "rule_models": rules,
        "service_sqlite": service,
        "channelattribution_markov_order1": None
        if reference is None
        else {"seconds": reference["seconds"], "unique_paths": reference["unique_paths"]},
        "markov_vs_channelattribution": agreement,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({key: value for key, value in result.items() if key != "machine"}, indent=2))


if __name__ == "__main__":
    main()
