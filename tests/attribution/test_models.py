"""The attribution models against hand-computed numbers, properties, and independent references."""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storeloop.attribution import models
from storeloop.attribution.models import JourneySet, Touch

ORDER_ID = uuid.UUID("00000000-0000-7000-8000-000000000001")
PLACED = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)


def touch(
    key: str,
    channel: str,
    days_before: float,
    *,
    kind: str = "utm",
    is_bot: bool = False,
    order_id: uuid.UUID | None = None,
    code: bool = False,
) -> Touch:
    return Touch(
        id=uuid.uuid5(uuid.NAMESPACE_URL, key),
        key=key,
        channel=channel,
        occurred_at=PLACED - timedelta(days=days_before),
        kind=kind,
        is_bot=is_bot,
        order_id=order_id,
        discount_code_id=uuid.uuid5(uuid.NAMESPACE_DNS, key) if code else None,
    )


def credits_of(journey: models.Journey, model: str, half_life: float = 1.0) -> list[Decimal]:
    return [
        share.credit
        for share in models.order_credits(journey, model, PLACED, half_life_days=half_life)
    ]


FOUR = [
    touch("a", "Organic Social", 3),
    touch("b", "Email", 2),
    touch("c", "Influencer", 1),
    touch("d", "Paid Search", 0),
]

# Hand-computed. time_decay with a 1-day half-life and touches 3, 2, 1 and 0 days before the
# order: weights 1/8, 1/4, 1/2, 1 (sum 15/8), so 1/15, 2/15, 4/15, 8/15; the rounding remainder
# (1e-12 short) lands on the largest share.
HAND_TABLE = {
    "last_click": ["1"],
    "first_click": ["1"],
    "linear": ["0.25", "0.25", "0.25", "0.25"],
    "position_based": ["0.4", "0.1", "0.1", "0.4"],
    "time_decay": ["0.066666666667", "0.133333333333", "0.266666666667", "0.533333333333"],
}


@pytest.mark.parametrize("model", sorted(HAND_TABLE))
def test_rule_models_match_the_hand_table(model: str) -> None:
    journey = models.select_journey(ORDER_ID, PLACED, FOUR, lookback_days=30, code_precedence=True)
    shares = models.order_credits(journey, model, PLACED, half_life_days=1.0)
    assert [share.credit for share in shares] == [Decimal(x) for x in HAND_TABLE[model]]
    if model == "last_click":
        assert [share.channel for share in shares] == ["Paid Search"]
    if model == "first_click":
        assert [share.channel for share in shares] == ["Organic Social"]


def test_position_based_one_and_two_touches() -> None:
    one = models.select_journey(ORDER_ID, PLACED, FOUR[:1], lookback_days=30, code_precedence=True)
    two = models.select_journey(ORDER_ID, PLACED, FOUR[:2], lookback_days=30, code_precedence=True)
    three = models.select_journey(
        ORDER_ID, PLACED, FOUR[:3], lookback_days=30, code_precedence=True
    )
    assert credits_of(one, "position_based") == [Decimal(1)]
    assert credits_of(two, "position_based") == [Decimal("0.5"), Decimal("0.5")]
    assert credits_of(three, "position_based") == [Decimal("0.4"), Decimal("0.2"), Decimal("0.4")]


def test_window_bots_direct_and_after_order_are_excluded_with_reasons() -> None:
    touches = [
        touch("old", "Email", 31),
        touch("bot", "Influencer", 1, kind="click", is_bot=True),
        touch("direct", "Direct", 2),
        touch("social", "Organic Social", 5),
        touch("late", "Email", -1),
    ]
    journey = models.select_journey(
        ORDER_ID, PLACED, touches, lookback_days=30, code_precedence=True
    )
    assert [t.key for t in journey.considered] == ["social"]
    assert {t.key: reason for t, reason in journey.excluded} == {
        "old": "outside_window",
        "bot": "bot",
        "direct": "direct_overridden",
        "late": "after_order",
    }
    assert journey.rule == "touchpoints"
    shares = models.order_credits(journey, "last_click", PLACED, half_life_days=7)
    assert [(s.channel, s.credit) for s in shares] == [("Organic Social", Decimal(1))]


def test_direct_only_and_no_touchpoints() -> None:
    direct = models.select_journey(
        ORDER_ID, PLACED, [touch("d", "Direct", 1)], lookback_days=30, code_precedence=True
    )
    assert direct.rule == "direct_only"
    nothing = models.select_journey(ORDER_ID, PLACED, [], lookback_days=30, code_precedence=True)
    assert nothing.rule == "no_touchpoints"
    for model in models.MODELS:
        shares = models.order_credits(nothing, model, PLACED, half_life_days=7)
        assert [(s.touch, s.channel, s.credit) for s in shares] == [(None, "Direct", Decimal(1))]


def test_discount_code_precedence_on_and_off() -> None:
    touches = [
        touch("click", "Organic Social", 2, kind="click"),
        touch("code", "Influencer", 0, kind="discount_code", order_id=ORDER_ID, code=True),
        # A code used on another order gives no precedence to this one.
        touch("other", "Affiliate", 1, kind="discount_code", order_id=uuid.uuid4(), code=True),
    ]
    on = models.select_journey(ORDER_ID, PLACED, touches, lookback_days=30, code_precedence=True)
    assert on.rule == "code_precedence"
    assert [t.key for t in on.considered] == ["code"]
    assert sorted((t.key, r) for t, r in on.excluded) == [
        ("click", "code_precedence"),
        ("other", "code_precedence"),
    ]
    off = models.select_journey(ORDER_ID, PLACED, touches, lookback_days=30, code_precedence=False)
    assert off.rule == "touchpoints"
    assert [t.key for t in off.considered] == ["click", "other", "code"]
    assert credits_of(off, "first_click") == [Decimal(1)]


def test_data_driven_credit_follows_channel_weights_split_over_touches() -> None:
    touches = [touch("a1", "A", 3), touch("b", "B", 2), touch("a2", "A", 1)]
    journey = models.select_journey(
        ORDER_ID, PLACED, touches, lookback_days=30, code_precedence=True
    )
    shares = models.order_credits(
        journey, "markov", PLACED, half_life_days=7, channel_weights={"A": 0.6, "B": 0.2, "C": 0.2}
    )
    # A holds 0.6 / 0.8 = 0.75 of this order, split over its two touches; B 0.25.
    assert [(s.touch.key if s.touch else None, s.credit) for s in shares] == [
        ("a1", Decimal("0.375")),
        ("b", Decimal("0.25")),
        ("a2", Decimal("0.375")),
    ]


channels = st.sampled_from(["Organic Social", "Email", "Influencer", "Direct", "Paid Search"])
touch_lists = st.lists(
    st.tuples(channels, st.integers(min_value=-2, max_value=40), st.booleans()),
    min_size=0,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(touch_lists, st.floats(min_value=0.1, max_value=60), st.booleans(), st.randoms())
def test_credits_sum_to_exactly_one_and_ignore_input_order(
    raw: list[tuple[str, int, bool]], half_life: float, precedence: bool, shuffle: object
) -> None:
    touches = [
        touch(f"t{i}", channel, days, is_bot=is_bot)
        for i, (channel, days, is_bot) in enumerate(raw)
    ]
    weights = {"Organic Social": 0.5, "Email": 0.3, "Influencer": 0.2}
    shuffled = list(touches)
    shuffle.shuffle(shuffled)  # type: ignore[attr-defined]
    for model in models.MODELS:
        results = []
        for candidate in (touches, shuffled):
            journey = models.select_journey(
                ORDER_ID, PLACED, candidate, lookback_days=30, code_precedence=precedence
            )
            shares = models.order_credits(
                journey, model, PLACED, half_life_days=half_life, channel_weights=weights
            )
            assert sum(share.credit for share in shares) == Decimal(1)
            assert all(share.credit >= 0 for share in shares)
            assert all(share.credit.as_tuple().exponent >= -12 for share in shares)  # type: ignore[operator]
            results.append([(s.touch.key if s.touch else None, s.credit) for s in shares])
        assert results[0] == results[1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=30))
def test_exact_shares_sum_to_one(weights: list[float]) -> None:
    shares = models.exact_shares(weights)
    assert sum(shares) == Decimal(1)
    assert all(share >= 0 for share in shares)


def test_exact_amounts_sum_to_net_revenue() -> None:
    credits = models.exact_shares([1, 1, 1])
    amounts = models.exact_amounts(Decimal("100.0000"), credits, Decimal("0.0001"))
    assert amounts == [Decimal("33.3334"), Decimal("33.3333"), Decimal("33.3333")]


# --- Markov ---------------------------------------------------------------------------------


def test_markov_removal_effects_by_hand() -> None:
    # a > b converts once, a alone fails once: P(conv) = 1/2 and removing either loses it all.
    chain = JourneySet.from_paths([(["a", "b"], 1, 0), (["a"], 0, 1)])
    assert models.markov_removal_effects(chain).tolist() == [1.0, 1.0]
    # a converts, b never does: removing b changes nothing.
    split = JourneySet.from_paths([(["a"], 1, 0), (["b"], 0, 1)])
    assert models.markov_removal_effects(split).tolist() == [1.0, 0.0]
    # a > a > b is a > b: a channel repeated in a row is one state visit.
    repeated = JourneySet.from_paths([(["a", "a", "b"], 1, 0), (["a"], 0, 1)])
    assert models.markov_removal_effects(repeated).tolist() == [1.0, 1.0]


def test_markov_three_channel_example_solved_exactly() -> None:
    journeys = JourneySet.from_paths(
        [(["a", "b"], 3, 1), (["b"], 1, 2), (["a", "c"], 2, 1), (["c"], 0, 3)]
    )
    # start -> a 7/13, b 3/13, c 3/13; a -> b 4/7, c 3/7; b converts 4/7; c converts 1/3.
    # P(conv) = 7/13 (4/7 4/7 + 3/7 1/3) + 3/13 4/7 + 3/13 1/3 = 42/91.
    # Without a: 3/13 4/7 + 3/13 1/3 = 19/91 -> 1 - 19/42 = 23/42.
    # Without b: 7/13 3/7 1/3 + 3/13 1/3 = 14/91 -> 1 - 14/42 = 2/3.
    # Without c: 7/13 4/7 4/7 + 3/13 4/7 = 28/91 -> 1 - 28/42 = 1/3.
    effects = models.markov_removal_effects(journeys)
    assert effects.tolist() == pytest.approx([23 / 42, 2 / 3, 1 / 3], abs=1e-12)


def _random_journeys(seed: int, channels: int, count: int) -> list[tuple[list[str], int, int]]:
    generator = np.random.default_rng(seed)
    names = [f"ch{index}" for index in range(channels)]
    strength = generator.uniform(0.05, 0.6, channels)
    paths: dict[tuple[str, ...], list[int]] = {}
    for _ in range(count):
        length = int(generator.integers(1, 5))
        chosen = generator.integers(0, channels, length)
        path = [names[chosen[0]]]
        for index in chosen[1:]:
            if names[index] != path[-1]:
                path.append(names[index])
        converted = generator.random() < 1 - np.prod(1 - strength[chosen])
        entry = paths.setdefault(tuple(path), [0, 0])
        entry[0 if converted else 1] += 1
    return [(list(path), conv, null) for path, (conv, null) in sorted(paths.items())]


def test_markov_agrees_with_channelattribution() -> None:
    ca = pytest.importorskip("ChannelAttribution")
    import pandas as pd

    raw = _random_journeys(seed=7, channels=5, count=3000)
    frame = pd.DataFrame(
        {
            "path": [" > ".join(path) for path, _, _ in raw],
            "total_conversions": [conv for _, conv, _ in raw],
            "total_null": [null for _, _, null in raw],
        }
    )
    result = ca.markov_model(
        frame, "path", "total_conversions", var_null="total_null", order=1, verbose=0, flg_pro=False
    )
    theirs = dict(zip(result["channel_name"], result["total_conversions"], strict=True))
    ours = models.channel_weights(JourneySet.from_paths(raw), "markov")
    total = sum(conv for _, conv, _ in raw)
    assert sorted(theirs) == sorted(ours)
    for name, weight in ours.items():
        # Their attribution is simulated (1e5 paths): normalised shares agree within ~1.5 points.
        assert theirs[name] / total == pytest.approx(weight, abs=0.015)


# --- Shapley --------------------------------------------------------------------------------


def _brute_force_shapley(raw: list[tuple[list[str], int, int]]) -> dict[str, float]:
    names = sorted({name for path, _, _ in raw for name in path})
    sets = [(frozenset(path), conv) for path, conv, _ in raw]

    def value(coalition: frozenset[str]) -> float:
        return float(sum(conv for members, conv in sets if members <= coalition))

    n = len(names)
    result = {}
    for name in names:
        others = [other for other in names if other != name]
        total = 0.0
        for size in range(n):
            for subset in itertools.combinations(others, size):
                coalition = frozenset(subset)
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                total += weight * (value(coalition | {name}) - value(coalition))
        result[name] = total
    return result


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shapley_closed_form_equals_subset_enumeration(seed: int) -> None:
    raw = _random_journeys(seed=seed, channels=6, count=300)
    journeys = JourneySet.from_paths(raw)
    ours = dict(zip(journeys.channels, models.shapley_values(journeys).tolist(), strict=True))
    reference = _brute_force_shapley(raw)
    assert ours.keys() == reference.keys()
    for name in ours:
        assert ours[name] == pytest.approx(reference[name], rel=1e-9)
    # Efficiency: the values add up to all conversions.
    assert sum(ours.values()) == pytest.approx(sum(conv for _, conv, _ in raw), rel=1e-12)


def test_sampled_shapley_is_close_to_exact_for_twelve_channels() -> None:
    journeys = JourneySet.from_paths(_random_journeys(seed=11, channels=12, count=2000))
    exact = models.shapley_values(journeys)
    sampled = models.shapley_values_sampled(journeys, permutations=3000, seed=0)
    assert np.allclose(sampled / sampled.sum(), exact / exact.sum(), atol=0.01)
    again = models.shapley_values_sampled(journeys, permutations=3000, seed=0)
    assert sampled.tolist() == again.tolist()
