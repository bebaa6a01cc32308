"""The dashboard against the devnet with its daemons: real requests, real proofs.

The app in-process (FastAPI's test client, over httpx's ASGI transport) on an indexer
following the chain, and the devnet's own `kalypso dashboard` process driven by Debian's
Chromium through Playwright. Screenshots of each page land in test-artifacts/dashboard/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kalypso.circuits import circuit
from kalypso.contracts.client import MarketplaceClient
from kalypso.contracts.deploy import TOKEN_UNIT
from kalypso.dashboard.app import create_app
from kalypso.dashboard.indexer import Indexer
from kalypso.devnet import dev_account
from kalypso.provers.proof import Groth16Proof
from kalypso.sdk import Kalypso, ProofRequest
from tests.integration.conftest import SdkDevnet

pytestmark = pytest.mark.filterwarnings("ignore::kalypso.sdk.DevAuthorityWarning")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def kalypso(sdk_devnet: SdkDevnet) -> Iterator[Kalypso]:
    """An app of its own (dev account 8, funded here), so no other test's balances move."""
    app = dev_account(8)
    setup = sdk_devnet.setup
    MarketplaceClient(sdk_devnet.chain.web3(), setup.deployment).transfer(
        setup.owner, app.address, 1_000 * TOKEN_UNIT
    )
    with Kalypso(sdk_devnet.url, sdk_devnet.deployment, app) as client:
        client.deposit("200 KAL")
        yield client


@pytest.fixture(scope="module")
def proven(kalypso: Kalypso) -> ProofRequest:
    """A request proven end to end by the devnet's generator."""
    request = kalypso.request_proof(
        "poseidon_preimage", {"preimage": 11}, max_price="20 KAL", proof_time=120
    )
    request.wait_for_proof(timeout=60)
    return request


async def test_the_app_shows_a_real_lifecycle_and_its_proof(
    sdk_devnet: SdkDevnet, proven: ProofRequest, tmp_path: Path
) -> None:
    indexer = await Indexer.open(sdk_devnet.url, sdk_devnet.deployment, tmp_path / "cache.sqlite")
    try:
        while await indexer.step():
            pass
        await indexer.update_head()
        transport = httpx.ASGITransport(app=create_app(indexer))
        async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
            rid = "0x" + proven.id.hex()
            model = (await client.get(f"/api/requests/{rid}")).json()
            assert model["state"] == "fulfilled"
            assert [e["name"] for e in model["timeline"]] == [
                "RequestCreated",
                "TaskAssigned",
                "ProofSubmitted",
            ]
            assert model["payment"]["shown"] == "10 KAL"
            body, public = model["proof"]["proof"], model["proof"]["public_signals"]
            proof = Groth16Proof.from_snarkjs(body, public)
            assert proof.verify_local(circuit("poseidon_preimage").vkey_json())

            generator = (await client.get(f"/api/generators/{model['generator']}")).json()
            assert generator["totals"]["fulfilled"] >= 1 and generator["earned"]["base"] > 0
            assert generator["standing"]["status"] == "active"

            market = (await client.get("/api/markets/poseidon_preimage")).json()
            assert market["summary"]["verifier_kind"] == "Groth16, verified on chain"
            assert market["typical_proof_time"] is not None

            for path in ("/", f"/requests/{rid}", f"/markets/{model['market_id']}"):
                assert (await client.get(path)).status_code == 200
            missing = await client.get("/requests/0x" + "ab" * 32)
            assert missing.status_code == 404 and "there is no request" in missing.text
    finally:
        await indexer.close()


def test_the_dashboard_process_follows_the_chain(
    sdk_devnet: SdkDevnet, proven: ProofRequest
) -> None:
    url = sdk_devnet.stack.dashboard.url
    rid = "0x" + proven.id.hex()
    page = httpx.get(f"{url}/requests/{rid}", timeout=10)
    assert page.status_code == 200 and "fulfilled" in page.text
    assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (`make test` installs it)"
)
def test_a_browser_sees_the_pages_the_live_feed_and_search(
    sdk_devnet: SdkDevnet, kalypso: Kalypso, proven: ProofRequest
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url = sdk_devnet.stack.dashboard.url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/")
            expect(page.locator("h1")).to_have_text("Markets")
            expect(page.locator("table.markets")).to_contain_text("poseidon_preimage")
            page.screenshot(path=ARTIFACTS / "home.png", full_page=True)

            # The open page learns of a new request without a reload.
            fresh = kalypso.request_proof(
                "poseidon_preimage", {"preimage": 12}, max_price="20 KAL", proof_time=120
            )
            rid = "0x" + fresh.id.hex()
            expect(page.locator(f'#feed a[title="{rid}"]').first).to_be_visible(timeout=15_000)
            page.screenshot(path=ARTIFACTS / "live-feed.png", full_page=True)

            page.fill("input[name=q]", rid)
            page.press("input[name=q]", "Enter")
            page.wait_for_url(f"{url}/requests/{rid}")
            expect(page.locator("h1")).to_contain_text(rid)
            fresh.wait_for_proof(timeout=60)
            # the request page reloads itself as its timeline grows
            expect(page.locator("p.state")).to_have_text("fulfilled", timeout=15_000)
            expect(page.locator("pre.proof")).to_contain_text("pi_a")
            page.screenshot(path=ARTIFACTS / "request.png", full_page=True)

            page.click("a[href^='/markets/']")
            expect(page.locator("svg.plot").first).to_be_visible()
            page.screenshot(path=ARTIFACTS / "market.png", full_page=True)

            page.goto(f"{url}/generators/{dev_account(2).address}")
            expect(page.locator("h1")).to_contain_text(dev_account(2).address)
            page.screenshot(path=ARTIFACTS / "generator.png", full_page=True)

            page.goto(f"{url}/requests/0x1234")
            expect(page.locator("h1")).to_have_text("Not found")
            page.screenshot(path=ARTIFACTS / "not-found.png", full_page=True)
        finally:
            browser.close()
