"""Markets by name: the one rule the SDK, the local backend, the CLI, the dashboard and
generator configs resolve a market reference by.

A reference is, in this order:

1. an id (an int, or decimal digits): always that market;
2. a name the deployment file records (`Deployment.markets`): its recorded market, even
   where other markets' metadata carry the same name: whoever wrote the deployment
   file chose it, while anyone can create a market with any metadata;
3. a name exactly one market's metadata carries: that market.

A metadata name two or more markets carry addresses none of them: it is an
`AmbiguousMarketError` naming every id. Neither the last market (an attacker's later
market would take the name over) nor the first (anyone could squat a name before the
real market is created) wins. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from kalypso.errors import AmbiguousMarketError, ConfigError


def is_id(ref: int | str) -> bool:
    """Whether `ref` is a market id rather than a name."""
    return isinstance(ref, int) or (ref.isascii() and ref.isdecimal())


def needs_metadata(ref: int | str, recorded: Mapping[str, int]) -> bool:
    """Whether resolving `ref` reads the markets' metadata names (neither an id nor a
    recorded name)."""
    return not is_id(ref) and str(ref) not in recorded


def resolve_market(
    ref: int | str,
    recorded: Mapping[str, int],
    carried: Mapping[int, str] | None = None,
    *,
    count: int | None = None,
) -> int:
    """The id `ref` addresses (see the module's rule).

    `recorded`: the deployment file's names; `carried`: each market's metadata name (None:
    names are not read, only ids and recorded names resolve); `count`: how many markets
    the marketplace has (None: ids are not checked against it).
    """
    if isinstance(ref, int) or is_id(ref):
        market_id = int(ref)
    elif ref in recorded:
        market_id = recorded[ref]
    else:
        market_id = _carried_by(ref, recorded, carried, count)
    if market_id < 0 or (count is not None and market_id >= count):
        raise ConfigError(f"there is no market {market_id}{_range(count)}")
    return market_id


def _carried_by(
    name: str, recorded: Mapping[str, int], carried: Mapping[int, str] | None, count: int | None
) -> int:
    ids = sorted(i for i, carried_name in (carried or {}).items() if carried_name == name)
    if len(ids) > 1:
        raise AmbiguousMarketError(name, ids)
    if not ids:
        raise ConfigError(f"unknown market {name!r}: {known_markets(recorded, carried, count)}")
    return ids[0]


def _range(count: int | None) -> str:
    if count is None:
        return ""
    if count == 0:
        return " (the marketplace has no markets yet)"
    return f" (the marketplace has markets 0 to {count - 1})"


#: most markets an error lists
LISTED = 20


def known_markets(
    recorded: Mapping[str, int], carried: Mapping[int, str] | None, count: int | None = None
) -> str:
    """What an unknown name could have been: each market's id with its names
    ("0 mock, 1 pp or poseidon_preimage, 2 (no name)"), for an error message."""
    if carried is None:  # metadata names were not read
        named = ", ".join(f"{i} {n}" for n, i in sorted(recorded.items(), key=lambda r: r[1]))
        if not named:
            return "give a market id (the deployment file records no market names)"
        return f"give a market id, or a name the deployment file records: {named}"
    ids = sorted(set(carried) | set(recorded.values()) | set(range(count or 0)))
    if not ids:
        return "the marketplace has no markets yet"
    entries = []
    for market_id in ids[:LISTED]:
        names = sorted(n for n, i in recorded.items() if i == market_id)
        if (own := carried.get(market_id)) is not None and own not in names:
            names.append(own)
        entries.append(f"{market_id} {' or '.join(names) or '(no name)'}")
    more = f" and {len(ids) - LISTED} more (`kalypso market list`)" if len(ids) > LISTED else ""
    return f"give a market id or name: {', '.join(entries)}{more}"


def name_notes(
    shown: Mapping[int, str], recorded: Mapping[str, int], carried: Mapping[int, str]
) -> dict[int, str]:
    """For each market whose shown name does not address it, why: for listings, which
    show every market and must not hide that a name is contested.

    `shown`: the name a listing shows for each market (its `Market.name`).
    """
    notes: dict[int, str] = {}
    for market_id, name in shown.items():
        try:
            target = resolve_market(name, recorded, carried)
        except AmbiguousMarketError as exc:
            notes[market_id] = f"ambiguous: {exc.users}; address it by id"
            continue
        except ConfigError:  # a name nothing addresses: not one of these markets'
            continue
        if target != market_id:
            whose = "the deployment file gives it to" if name in recorded else "it is the id of"
            notes[market_id] = f"not this market's name: {whose} market {target}"
    return notes
