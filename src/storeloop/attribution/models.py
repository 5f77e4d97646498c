"""Attribution models: which touchpoints an order considers, and the credit each one gets.

Pure functions (numpy for the data-driven models). Rule models work on one order's journey;
Markov and Shapley learn one weight per channel from all journeys of a workspace, converting and
not, and an order's credit is then shared by its channels in proportion to those weights. Every
order's credits are Decimals with 12 places that sum to exactly 1 per model.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import numpy.typing as npt

from storeloop.attribution.channels import DIRECT

CREDIT_QUANTUM = Decimal("0.000000000001")
RULE_MODELS = ("last_click", "first_click", "linear", "time_decay", "position_based")
DATA_DRIVEN_MODELS = ("markov", "shapley")
MODELS = RULE_MODELS + DATA_DRIVEN_MODELS

# Reasons a touchpoint is left out of an order's journey (the explanation API shows them).
OUTSIDE_WINDOW = "outside_window"
AFTER_ORDER = "after_order"
BOT = "bot"
DIRECT_OVERRIDDEN = "direct_overridden"
CODE_PRECEDENCE = "code_precedence"
# The rule that decided an order's journey.
RULE_CODE_PRECEDENCE = "code_precedence"
RULE_TOUCHPOINTS = "touchpoints"
RULE_DIRECT_ONLY = "direct_only"
RULE_NO_TOUCHPOINTS = "no_touchpoints"


@dataclass(frozen=True, slots=True)
class Touch:
    """One touchpoint as the models see it; ``key`` (the dedupe key) breaks time ties."""

    id: uuid.UUID
    key: str
    channel: str
    occurred_at: datetime
    kind: str = "utm"
    is_bot: bool = False
    # Set on touchpoints read from an order itself (its discount codes, its landing page).
    order_id: uuid.UUID | None = None
    discount_code_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Journey:
    """The touchpoints one order considers, in time order, and those it leaves out."""

    considered: tuple[Touch, ...]
    excluded: tuple[tuple[Touch, str], ...]
    rule: str


@dataclass(frozen=True, slots=True)
class Share:
    """One credit line: a touchpoint (None: the order had none, Direct) and its share."""

    touch: Touch | None
    channel: str
    credit: Decimal


def _sort_key(touch: Touch) -> tuple[datetime, str]:
    return (touch.occurred_at, touch.key)


def select_journey(
    order_id: uuid.UUID,
    placed_at: datetime,
    touches: Sequence[Touch],
    *,
    lookback_days: int,
    code_precedence: bool,
) -> Journey:
    """Decide which touchpoints count for an order.

    Order: bots never count; touchpoints after the order or before the lookback window don't;
    an order's own discount code (when the workspace rule is on) takes all the credit, as
    affiliate tools do; otherwise direct visits count only when nothing else did.
    """
    window_start = placed_at - timedelta(days=lookback_days)
    excluded: list[tuple[Touch, str]] = []
    in_window: list[Touch] = []
    for touch in sorted(touches, key=_sort_key):
        if touch.is_bot:
            excluded.append((touch, BOT))
        elif touch.occurred_at > placed_at:
            excluded.append((touch, AFTER_ORDER))
        elif touch.occurred_at < window_start:
            excluded.append((touch, OUTSIDE_WINDOW))
        else:
            in_window.append(touch)
    codes = [
        touch
        for touch in in_window
        if touch.kind == "discount_code"
        and touch.order_id == order_id
        and touch.discount_code_id is not None
    ]
    if code_precedence and codes:
        others = [(touch, CODE_PRECEDENCE) for touch in in_window if touch not in codes]
        return Journey(tuple(codes), tuple(excluded + others), RULE_CODE_PRECEDENCE)
    marketing = [touch for touch in in_window if touch.channel != DIRECT]
    if marketing:
        direct = [(touch, DIRECT_OVERRIDDEN) for touch in in_window if touch.channel == DIRECT]
        return Journey(tuple(marketing), tuple(excluded + direct), RULE_TOUCHPOINTS)
    if in_window:
        return Journey(tuple(in_window), tuple(excluded), RULE_DIRECT_ONLY)
    return Journey((), tuple(excluded), RULE_NO_TOUCHPOINTS)


def exact_shares(weights: Sequence[float]) -> list[Decimal]:
    """Weights scaled to Decimals with 12 places summing to exactly 1.

    Each share is rounded half-even; the rounding remainder goes to the largest share (the
    first of equals), so it is always positive and the sum is exact.
    """
    if not weights:
        return []
    total = math.fsum(weights)
    if not total > 0 or not math.isfinite(total):
        weights = [1.0] * len(weights)
        total = float(len(weights))
    shares = [
        Decimal(repr(weight / total)).quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_EVEN)
        for weight in weights
    ]
    largest = max(range(len(shares)), key=lambda index: (shares[index], -index))
    shares[largest] += Decimal(1) - sum(shares, Decimal(0))
    return shares


def exact_amounts(total: Decimal, credits: Sequence[Decimal], quantum: Decimal) -> list[Decimal]:
    """``total`` split by ``credits`` in units of ``quantum``; the parts sum exactly to total."""
    if not credits:
        return []
    amounts = [(total * credit).quantize(quantum, rounding=ROUND_HALF_EVEN) for credit in credits]
    largest = max(range(len(credits)), key=lambda index: (credits[index], -index))
    amounts[largest] += total.quantize(quantum) - sum(amounts, Decimal(0))
    return amounts


def rule_weights(
    model: str, journey: Sequence[Touch], placed_at: datetime, half_life_days: float
) -> list[float]:
    count = len(journey)
    if model == "last_click":
        return [0.0] * (count - 1) + [1.0]
    if model == "first_click":
        return [1.0] + [0.0] * (count - 1)
    if model == "linear":
        return [1.0] * count
    if model == "time_decay":
        half_life = max(half_life_days, 1e-9) * 86400.0
        return [
            2.0 ** (-max((placed_at - touch.occurred_at).total_seconds(), 0.0) / half_life)
            for touch in journey
        ]
    if model == "position_based":
        if count == 1:
            return [1.0]
        if count == 2:
            return [0.5, 0.5]
        middle = 0.2 / (count - 2)
        return [0.4] + [middle] * (count - 2) + [0.4]
    raise ValueError(f"unknown rule model {model!r}")


def data_driven_weights(
    journey: Sequence[Touch], channel_weights: Mapping[str, float]
) -> list[float]:
    """An order's channels share its credit in proportion to their learned weight, split evenly
    over each channel's touchpoints; channels the model gives nothing fall back to linear."""
    counts: dict[str, int] = {}
    for touch in journey:
        counts[touch.channel] = counts.get(touch.channel, 0) + 1
    total = math.fsum(max(channel_weights.get(channel, 0.0), 0.0) for channel in counts)
    if not total > 0:
        return [1.0] * len(journey)
    return [
        max(channel_weights.get(touch.channel, 0.0), 0.0) / total / counts[touch.channel]
        for touch in journey
    ]


def order_credits(
    journey: Journey,
    model: str,
    placed_at: datetime,
    *,
    half_life_days: float,
    channel_weights: Mapping[str, float] | None = None,
) -> list[Share]:
    """The credit lines of one order under one model, in journey order, summing to 1."""
    touches = journey.considered
    if not touches:
        return [Share(None, DIRECT, Decimal(1))]
    if model in RULE_MODELS:
        weights = rule_weights(model, touches, placed_at, half_life_days)
    elif model in DATA_DRIVEN_MODELS:
        weights = data_driven_weights(touches, channel_weights or {})
    else:
        raise ValueError(f"unknown model {model!r}")
    credits = exact_shares(weights)
    return [
        Share(touch, touch.channel, credit)
        for touch, credit in zip(touches, credits, strict=True)
        if credit != 0
    ]


# --- Data-driven models -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JourneySet:
    """Journeys as channel indices, each with its conversions and non-conversions (counts)."""

    channels: tuple[str, ...]
    paths: Sequence[Sequence[int]]
    conversions: npt.NDArray[np.float64]
    nulls: npt.NDArray[np.float64]

    @classmethod
    def from_paths(cls, paths: Sequence[tuple[Sequence[str], float, float]]) -> JourneySet:
        """From (channel names, conversions, nulls); channel indices follow sorted names."""
        names = sorted({name for path, _, _ in paths for name in path})
        index = {name: position for position, name in enumerate(names)}
        return cls(
            channels=tuple(names),
            paths=[[index[name] for name in path] for path, _, _ in paths],
            conversions=np.array([conv for _, conv, _ in paths], dtype=np.float64),
            nulls=np.array([null for _, _, null in paths], dtype=np.float64),
        )


def _flatten(journeys: JourneySet) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """All paths in one array, with consecutive repeats of a channel collapsed, and offsets."""
    lengths = np.fromiter((len(path) for path in journeys.paths), dtype=np.int64)
    flat = np.fromiter(
        (channel for path in journeys.paths for channel in path),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    starts = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        starts[1:] = np.cumsum(lengths)[:-1]
    return flat, starts


def markov_removal_effects(journeys: JourneySet) -> npt.NDArray[np.float64]:
    """Removal effect of each channel under a first-order Markov chain, solved exactly.

    States: start, the channels, conversion, null. Transition probabilities are the observed
    transition counts (journeys weighted by conversions + nulls; a channel repeated in a row
    counts once). The conversion probability from start is the solution of (I - Q) x = r, with Q
    the transient-to-transient block and r the one-step conversion probabilities. Removing a
    channel sends everything that would enter it to null; its removal effect is
    1 - P(conversion without it) / P(conversion). All channels are solved in one batched call.
    """
    channel_count = len(journeys.channels)
    effects = np.zeros(channel_count, dtype=np.float64)
    if channel_count == 0 or float(journeys.conversions.sum()) <= 0:
        return effects
    flat, starts = _flatten(journeys)
    lengths = np.fromiter((len(path) for path in journeys.paths), dtype=np.int64)
    keep = lengths > 0
    weight = journeys.conversions + journeys.nulls
    # States: 0 = start, 1..k = channels, k+1 = conversion, k+2 = null.
    size = channel_count + 3
    conversion_state, null_state = channel_count + 1, channel_count + 2
    counts = np.zeros((size, size), dtype=np.float64)
    # start -> first channel of each path
    np.add.at(
        counts, (np.zeros(int(keep.sum()), dtype=np.int64), flat[starts[keep]] + 1), weight[keep]
    )
    # channel -> next channel inside paths (skipping self-repeats)
    path_of = np.repeat(np.arange(len(lengths)), lengths)
    if len(flat) > 1:
        same_path = path_of[1:] == path_of[:-1]
        moves = same_path & (flat[1:] != flat[:-1])
        np.add.at(counts, (flat[:-1][moves] + 1, flat[1:][moves] + 1), weight[path_of[1:][moves]])
    # last channel -> conversion / null
    last = flat[starts[keep] + lengths[keep] - 1] + 1
    np.add.at(counts, (last, conversion_state), journeys.conversions[keep])
    np.add.at(counts, (last, null_state), journeys.nulls[keep])
    totals = counts.sum(axis=1, keepdims=True)
    probabilities = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    transient = channel_count + 1
    q = probabilities[:transient, :transient]
    r = probabilities[:transient, conversion_state]
    identity = np.eye(transient)
    base = float(np.linalg.solve(identity - q, r)[0])
    if base <= 0:
        return effects
    # One system per removed channel: its column (entries into it) and its row are zeroed.
    batched = np.broadcast_to(q, (channel_count, transient, transient)).copy()
    rhs = np.broadcast_to(r, (channel_count, transient)).copy()
    removed = np.arange(channel_count) + 1
    batched[np.arange(channel_count), :, removed] = 0.0
    batched[np.arange(channel_count), removed, :] = 0.0
    rhs[np.arange(channel_count), removed] = 0.0
    solved = np.linalg.solve(identity[None, :, :] - batched, rhs[:, :, None])[:, 0, 0]
    effects = 1.0 - solved / base
    result: npt.NDArray[np.float64] = np.clip(effects, 0.0, 1.0)
    return result


def shapley_values(journeys: JourneySet) -> npt.NDArray[np.float64]:
    """Exact Shapley values of the game v(S) = conversions of journeys whose channel set is
    inside S, for any number of channels.

    v is a sum of unanimity games (one per observed channel set T, scaled by its conversions),
    and the Shapley value of a unanimity game gives each member of T 1/|T|; so each channel
    receives sum over converting channel sets T containing it of conversions(T) / |T|.
    """
    channel_count = len(journeys.channels)
    if channel_count == 0 or not len(journeys.paths):
        return np.zeros(channel_count, dtype=np.float64)
    flat, _ = _flatten(journeys)
    lengths = np.fromiter((len(path) for path in journeys.paths), dtype=np.int64)
    path_of = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    # Each (journey, channel) pair once: the journey's channel set.
    pairs = np.unique(path_of * channel_count + flat)
    pair_path, pair_channel = np.divmod(pairs, channel_count)
    set_sizes = np.bincount(pair_path, minlength=len(lengths))
    per_member = np.divide(
        journeys.conversions,
        set_sizes,
        out=np.zeros(len(lengths), dtype=np.float64),
        where=set_sizes > 0,
    )
    values: npt.NDArray[np.float64] = np.bincount(
        pair_channel, weights=per_member[pair_path], minlength=channel_count
    ).astype(np.float64)
    return values


def shapley_values_sampled(
    journeys: JourneySet, permutations: int = 2000, seed: int = 0
) -> npt.NDArray[np.float64]:
    """Monte Carlo permutation estimate of the same Shapley values (fixed seed: deterministic).

    Kept as an independent check of the closed form and for characteristic functions without
    one: a channel's marginal contribution in a permutation is the conversions of the journeys
    it completes, i.e. whose channel set's latest member in that permutation is this channel.
    """
    channel_count = len(journeys.channels)
    values = np.zeros(channel_count, dtype=np.float64)
    sets = [np.unique(np.asarray(path, dtype=np.int64)) for path in journeys.paths]
    converting = [
        (members, float(conversions))
        for members, conversions in zip(sets, journeys.conversions, strict=True)
        if conversions > 0 and len(members)
    ]
    if not converting or channel_count == 0:
        return values
    generator = np.random.default_rng(seed)
    ragged_members = np.concatenate([members for members, _ in converting])
    owner = np.repeat(np.arange(len(converting)), [len(members) for members, _ in converting])
    conversions = np.array([value for _, value in converting])
    for _ in range(permutations):
        rank = generator.permutation(channel_count)
        ranks = rank[ragged_members]
        latest_rank = np.full(len(converting), -1, dtype=np.int64)
        np.maximum.at(latest_rank, owner, ranks)
        order = np.argsort(rank)
        completer = order[latest_rank]
        np.add.at(values, completer, conversions)
    result: npt.NDArray[np.float64] = values / permutations
    return result


def channel_weights(journeys: JourneySet, model: str) -> dict[str, float]:
    """Normalised per-channel weights (summing to 1, or all 0 when nothing converted)."""
    if model == "markov":
        raw = markov_removal_effects(journeys)
    elif model == "shapley":
        raw = shapley_values(journeys)
    else:
        raise ValueError(f"unknown data-driven model {model!r}")
    total = float(raw.sum())
    if total <= 0:
        return dict.fromkeys(journeys.channels, 0.0)
    return {name: float(value) / total for name, value in zip(journeys.channels, raw, strict=True)}
