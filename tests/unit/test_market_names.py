"""Markets by name (attack 9): a later market must not take over an earlier one's name.

Anyone can create a market with any metadata, so a name carried by two markets
addresses neither (not the last: a takeover; not the first: squatting); a name the
deployment file records addresses its recorded market. The rule is
`kalypso.market.names.resolve_market`; the SDK client, the local backend, generator
configs and the dashboard resolve through it.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from kalypso.deployment import Deployment
from kalypso.errors import AmbiguousMarketError, ConfigError, KalypsoError
from kalypso.generator.config import MarketConfig
from kalypso.generator.onboard import resolve_markets
from kalypso.market.names import is_id, name_notes, needs_metadata, resolve_market
from kalypso.sdk import AsyncKalypso, LocalKalypso
from kalypso.sdk.markets import NO_IMAGE, ZERO_ADDRESS, Market, metadata_names

# markets 1 (the real one) and 7 (the attacker's, created later) carry one name
TAKEN = [None, "poseidon_preimage", "square_root", None, None, None, None, "poseidon_preimage"]
CARRIED = {i: n for i, n in enumerate(TAKEN) if n is not None}
AMBIGUOUS = (
    "market name 'poseidon_preimage' is ambiguous: markets 1 and 7 both use it; address "
    "the market by id, or record the name in the deployment file"
)


def market(market_id: int, name: str | None) -> Market:
    return Market(
        id=market_id,
        name=name or str(market_id),
        verifier="0x" + f"{market_id:040x}",
        slashing_penalty=0,
        input_verifier=None,
        generator_image=NO_IMAGE,
        input_verification_image=NO_IMAGE,
        proof_verification_image=NO_IMAGE,
        proof_system="groth16",
        metadata={} if name is None else {"name": name},
    )


class _Call:
    def __init__(self, value: Any) -> None:
        self.value = value

    async def call(self) -> Any:
        return self.value


def market_registry(count: int) -> Any:
    """A market registry that answers `market_count` and `market(id)` (terms)."""
    terms = (ZERO_ADDRESS, "0x" + "5e" * 20, ZERO_ADDRESS, 7)
    functions = SimpleNamespace(market_count=lambda: _Call(count), market=lambda _: _Call(terms))
    return SimpleNamespace(functions=functions)


def offline_client(names: list[str | None], recorded: dict[str, int]) -> AsyncKalypso:
    """The SDK client over markets already read (no chain): market i carries names[i]."""
    deployment = Deployment(
        1, 0, "0xtoken", "0xregistry", "0xmarketplace", "0xmarkets", "KAL", 18, markets=recorded
    )
    binding: Any = SimpleNamespace(
        w3=None,
        deployment=deployment,
        marketplace=None,
        markets=market_registry(len(names)),
        registry=None,
        token=None,
    )
    client = AsyncKalypso(binding, None)
    for i, name in enumerate(names):
        client._markets[i] = market(i, name)
    return client


# ---- the attack, through the SDK client


async def test_attack_market_name_takeover_through_the_sdk_client() -> None:
    client = offline_client(TAKEN, recorded={})
    with pytest.raises(AmbiguousMarketError) as caught:
        await client.market("poseidon_preimage")
    assert str(caught.value) == f"[K-CFG-002] {AMBIGUOUS}"
    assert caught.value.ids == [1, 7] and caught.value.name == "poseidon_preimage"
    assert isinstance(caught.value, ConfigError) and isinstance(caught.value, LookupError)
    assert (await client.market("square_root")).id == 2  # a name one market carries
    assert (await client.market(7)).id == (await client.market("7")).id == 7  # ids always


async def test_attack_market_name_takeover_loses_to_the_deployment_file() -> None:
    client = offline_client(TAKEN, recorded={"poseidon_preimage": 1})
    assert (await client.market("poseidon_preimage")).id == 1
    # the file wins even where the attacker's market came first
    squatted = offline_client(list(reversed(TAKEN)), recorded={"poseidon_preimage": 6})
    assert (await squatted.market("poseidon_preimage")).id == 6


async def test_attack_market_name_takeover_is_flagged_in_the_listing() -> None:
    listed = await offline_client(TAKEN, recorded={}).markets()
    assert [m.name for m in listed] == [m.name for m in map(market, range(8), TAKEN)]
    notes = {m.id: m.name_note for m in listed if m.name_note}
    assert notes == {
        1: "ambiguous: markets 1 and 7 both use it; address it by id",
        7: "ambiguous: markets 1 and 7 both use it; address it by id",
    }
    recorded = await offline_client(TAKEN, recorded={"poseidon_preimage": 1}).markets()
    notes = {m.id: m.name_note for m in recorded if m.name_note}
    assert notes == {7: "not this market's name: the deployment file gives it to market 1"}


# ---- the rule, pure


def test_attack_market_name_takeover_is_ambiguous_whoever_came_first() -> None:
    with pytest.raises(AmbiguousMarketError, match="markets 1 and 7 both use it"):
        resolve_market("poseidon_preimage", {}, CARRIED)
    squatted = {7 - i: n for i, n in CARRIED.items()}  # the attacker's market came first
    with pytest.raises(AmbiguousMarketError, match="markets 0 and 6 both use it"):
        resolve_market("poseidon_preimage", {}, squatted)


def test_attack_market_name_takeover_names_every_id() -> None:
    carried = {**CARRIED, 4: "poseidon_preimage", 9: "poseidon_preimage"}
    with pytest.raises(AmbiguousMarketError, match="markets 1, 4, 7 and 9 all use it"):
        resolve_market("poseidon_preimage", {}, carried)


@pytest.mark.parametrize("recorded_id", [1, 7, 3])
def test_attack_market_name_takeover_a_recorded_name_wins(recorded_id: int) -> None:
    recorded = {"poseidon_preimage": recorded_id}
    assert resolve_market("poseidon_preimage", recorded, CARRIED, count=8) == recorded_id


def test_attack_market_name_takeover_a_digit_name_is_never_a_name() -> None:
    carried = {**CARRIED, 7: "1"}  # the attacker names its market like market 1's id
    assert resolve_market("1", {}, carried) == 1
    assert resolve_market("0007", {"7": 2}, carried) == 7
    assert name_notes({7: "1"}, {}, carried) == {
        7: "not this market's name: it is the id of market 1"
    }


def test_ids_and_unknown_names() -> None:
    assert resolve_market(3, {}, CARRIED, count=8) == 3
    assert is_id(3) and is_id("03") and not is_id("²") and not is_id("-1") and not is_id("x")
    with pytest.raises(
        ConfigError, match=r"there is no market 8 \(the marketplace has markets 0 to 7\)$"
    ):
        resolve_market("8", {}, CARRIED, count=8)
    with pytest.raises(ConfigError, match=r"there is no market -1$"):
        resolve_market(-1, {}, CARRIED)
    with pytest.raises(
        ConfigError, match=r"there is no market 0 \(the marketplace has no markets yet\)"
    ):
        resolve_market(0, {}, {}, count=0)
    with pytest.raises(
        ConfigError, match=r"there is no market 9 \(the marketplace has markets 0 to 7\)"
    ):
        resolve_market("x", {"x": 9}, CARRIED, count=8)


def test_an_unknown_name_lists_every_market_with_its_id() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_market("nope", {"a": 0, "pp": 1}, CARRIED, count=4)
    assert str(caught.value) == (
        "[K-CFG-001] unknown market 'nope': give a market id or name: 0 a, "
        "1 pp or poseidon_preimage, 2 square_root, 3 (no name), 7 poseidon_preimage"
    )
    assert not isinstance(caught.value, AmbiguousMarketError)
    with pytest.raises(ConfigError, match=r"'nope': the marketplace has no markets yet$"):
        resolve_market("nope", {}, {}, count=0)
    many = {i: f"m{i}" for i in range(25)}
    with pytest.raises(ConfigError, match=r"19 m19 and 5 more \(`kalypso market list`\)$"):
        resolve_market("nope", {}, many)
    # metadata names not read: only the deployment file's names are offered
    with pytest.raises(ConfigError, match=r"or a name the deployment file records: 0 a$"):
        resolve_market("poseidon_preimage", {"a": 0})
    with pytest.raises(ConfigError, match=r"give a market id \(the deployment file records no"):
        resolve_market("poseidon_preimage", {})


def test_needs_metadata_only_for_names_the_file_does_not_record() -> None:
    assert not needs_metadata(3, {}) and not needs_metadata("3", {})
    assert not needs_metadata("a", {"a": 0})
    assert needs_metadata("b", {"a": 0})


def test_name_notes_leave_uncontested_names_alone() -> None:
    shown = {i: n or str(i) for i, n in enumerate(TAKEN)}
    assert name_notes({0: "0", 2: "square_root"}, {}, CARRIED) == {}
    assert set(name_notes(shown, {}, CARRIED)) == {1, 7}
    # a market the deployment file names, whose metadata carries another market's name
    assert name_notes({1: "pp"}, {"pp": 1}, {1: "square_root", 2: "square_root"}) == {}


def test_metadata_names_skip_markets_without_one() -> None:
    markets = [market(0, None), market(1, "a"), replace(market(2, "b"), metadata={"name": ""})]
    assert metadata_names(markets) == {1: "a"}


# ---- the other places that resolve a market by name


async def test_attack_market_name_takeover_through_the_local_backend() -> None:
    local = LocalKalypso(preflight=False)
    try:
        local._markets = [market(0, "poseidon_preimage"), market(1, "poseidon_preimage")]
        with pytest.raises(AmbiguousMarketError, match="markets 0 and 1 both use it"):
            await local.market("poseidon_preimage")
        assert (await local.market("1")).id == 1
    finally:
        await local.close()


def binding(count: int, recorded: dict[str, int]) -> Any:
    """What `resolve_markets` reads of a deployment binding."""
    deployment = Deployment(1, 0, "0xt", "0xr", "0xm", "0xmr", "KAL", 18, markets=recorded)
    return SimpleNamespace(markets=market_registry(count), deployment=deployment, w3=None)


async def test_generator_configs_name_markets_by_id_or_either_name() -> None:
    def config(ref: str) -> MarketConfig:
        return MarketConfig(market=ref, price=1, proof_time=60)

    reads = []

    async def names() -> dict[int, str]:
        reads.append(1)
        return CARRIED

    refs = (config("pp"), config("7"), config("square_root"))
    resolved = await resolve_markets(binding(8, {"pp": 1}), refs, names)
    assert sorted(resolved) == [1, 2, 7] and reads == [1]  # names read once
    await resolve_markets(binding(8, {"pp": 1}), (config("pp"), config("3")), names)
    assert reads == [1]  # ids and recorded names need no metadata
    # a metadata name two markets carry stops the node: it names the table and both ids
    with pytest.raises(AmbiguousMarketError) as caught:
        await resolve_markets(binding(8, {}), (config("poseidon_preimage"),), names)
    assert str(caught.value).startswith(
        "[K-CFG-002] the config's [markets.poseidon_preimage]: market name "
        "'poseidon_preimage' is ambiguous: markets 1 and 7 both use it"
    )
    with pytest.raises(ConfigError, match=r"the config's \[markets\.nope\]: unknown market 'nope'"):
        await resolve_markets(binding(8, {}), (config("nope"),), names)
    with pytest.raises(ConfigError, match=r"\[markets\.9\]: there is no market 9 \(the market"):
        await resolve_markets(binding(8, {}), (config("9"),), names)
    with pytest.raises(ConfigError, match=r"\[markets\.2\] and \[markets\.square_root\] are both"):
        await resolve_markets(binding(8, {}), (config("2"), config("square_root")), names)


def test_the_error_is_one_kalypso_error_with_a_code() -> None:
    error = AmbiguousMarketError("x", [7, 1])
    assert isinstance(error, KalypsoError) and error.code == "K-CFG-002"
    assert error.ids == [1, 7] and error.users == "markets 1 and 7 both use it"
