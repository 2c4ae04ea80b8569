"""The portal in a real browser: sign-in, each role's view, a re-point and a rollback checked
through the OpenAI SDK, CSRF refusal, an owner kept out of another project."""

from __future__ import annotations

import openai
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import ADMIN_KEY, Gateway, shoot, sign_in
from tests.waiting import wait_until


def _served_model(gateway: Gateway, key: str) -> str:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=30)
    raw = client.chat.completions.with_raw_response.create(
        model="live", messages=[{"role": "user", "content": "hi"}]
    )
    return raw.headers["x-modelyard-model"]


def _confirm(page: Page) -> None:
    expect(page.get_by_test_id("clients")).to_contain_text("For clients nothing changes")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_test_id("changed")).to_contain_text("recorded")


def test_sign_in_and_the_operators_pages(browser: BrowserContext, gateway: Gateway):
    page = browser.new_page()
    page.goto(f"{gateway.url}/portal/")
    page.wait_for_url("**/portal/login")
    shoot(page, "sign-in")
    page.get_by_label("API key").fill("my-wrongwrongwr-nope")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid API key")
    sign_in(page, gateway, ADMIN_KEY)
    nav = page.get_by_role("navigation", name="Portal")
    for label in ("Catalog", "Deployments", "Keys and projects", "Usage and cost"):
        expect(nav.get_by_role("link", name=label)).to_be_visible()
    with page.expect_response(lambda answer: "q=gpt-4o-mini" in answer.url):
        page.get_by_label("Search").fill("gpt-4o-mini")
    expect(page.locator("#rows")).to_contain_text("live")  # the deployment using it, via HTMX
    with page.expect_response(lambda answer: "vendor=openai" in answer.url):
        page.get_by_label("Vendor").select_option("openai")  # a select refilters at once
    expect(page.locator("#rows")).to_contain_text("live")
    shoot(page, "catalog")
    page.get_by_role("link", name="gpt-4o-mini", exact=True).first.click()
    expect(page.get_by_role("heading", name="Try it").first).to_be_visible()
    shoot(page, "model")
    page.goto(f"{gateway.url}/portal/deployments")
    expect(page.get_by_role("link", name="live")).to_be_visible()
    shoot(page, "deployments")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/portal/login")
    page.goto(f"{gateway.url}/portal/catalog")
    page.wait_for_url("**/portal/login")


def test_a_re_point_and_a_rollback_change_the_model_clients_get(
    browser: BrowserContext, gateway: Gateway
):
    gateway.admin("POST", "/projects", json={"id": "repoint"})
    caller = gateway.key("repoint", "member")
    assert _served_model(gateway, caller) == "gpt-4o-mini"
    page = browser.new_page()
    sign_in(page, gateway, ADMIN_KEY)
    page.goto(f"{gateway.url}/portal/deployments/live")
    page.get_by_label("Model of target 1").fill("gpt-4o")
    shoot(page, "deployment")
    page.get_by_role("button", name="Review the change").click()
    shoot(page, "confirm")
    _confirm(page)
    shoot(page, "changed")
    assert _served_model(gateway, caller) == "gpt-4o"
    page.goto(f"{gateway.url}/portal/deployments/live")
    page.get_by_text("Changes from the version before").last.click()
    page.get_by_role("button", name="Roll back to version 1").click()
    _confirm(page)
    assert _served_model(gateway, caller) == "gpt-4o-mini"
    page.goto(f"{gateway.url}/portal/deployments/live")
    expect(page.get_by_role("region", name="Version 3")).to_contain_text("rollback:1")


def test_roles_see_what_they_may_and_an_owner_no_other_project(
    browser: BrowserContext, gateway: Gateway
):
    for project in ("alpha", "beta"):
        gateway.admin("POST", "/projects", json={"id": project})
    gateway.key("beta", "member", name="beta-only")
    owner, member = gateway.key("alpha", "owner"), gateway.key("alpha", "member")
    page = browser.new_page()
    sign_in(page, gateway, owner)
    page.get_by_role("link", name="Keys and projects").click()
    expect(page.get_by_role("main")).to_contain_text("alpha")
    expect(page.get_by_role("main")).not_to_contain_text("beta")
    page.get_by_label("Name").fill("made-in-the-browser")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("secret").inner_text()
    shoot(page, "key-created")
    assert _served_model(gateway, secret) == "gpt-4o-mini"  # the new key works at once
    page.goto(f"{gateway.url}/portal/keys")
    expect(page.get_by_role("main")).to_contain_text("made-in-the-browser")
    expect(page.get_by_role("main")).not_to_contain_text(secret)  # shown once only
    shoot(page, "keys")
    refused = page.goto(f"{gateway.url}/portal/keys?project=beta")
    assert refused is not None and refused.status == 403
    expect(page.get_by_test_id("error")).to_contain_text("beta")
    expect(page.get_by_role("main")).not_to_contain_text("beta-only")
    page.goto(f"{gateway.url}/portal/deployments/live")
    expect(page.get_by_role("button", name="Review the change")).to_have_count(0)
    page.goto(f"{gateway.url}/portal/usage?bucket=hour&by=key")
    wait_until(  # the ledger is written in the background
        lambda: (
            page.reload()
            and "(project alpha)" in page.inner_text("main")
            and not page.locator("text=No requests in this range").count()
        ),
        "the owner's usage shown",
    )
    expect(page.get_by_role("img", name="Requests: 1 bars, highest 1")).to_be_visible()
    shoot(page, "usage")

    member_page = browser.new_page()
    browser.clear_cookies()
    sign_in(member_page, gateway, member)
    nav = member_page.get_by_role("navigation", name="Portal")
    expect(nav.get_by_role("link", name="Keys and projects")).to_have_count(0)
    expect(nav.get_by_role("link", name="Deployments")).to_be_visible()


def test_a_form_without_its_csrf_token_is_refused(browser: BrowserContext, gateway: Gateway):
    page = browser.new_page()
    sign_in(page, gateway, ADMIN_KEY)
    # The session cookie goes along (same browser context); the token does not.
    forged = page.request.post(f"{gateway.url}/portal/projects", form={"id": "forged"})
    assert forged.status == 403 and "CSRF" in forged.text()
    projects = [p["id"] for p in gateway.admin("GET", "/projects")["data"]]
    assert "forged" not in projects
    page.goto(f"{gateway.url}/portal/keys")
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    made = page.request.post(
        f"{gateway.url}/portal/projects", form={"id": "with-token", "csrf": token or ""}
    )
    assert made.status == 200
    wait_until(
        lambda: "with-token" in [p["id"] for p in gateway.admin("GET", "/projects")["data"]],
        "the project listed",
    )


def test_a_playground_comparison_streams_two_deployments_side_by_side(
    browser: BrowserContext, gateway: Gateway
):
    page = browser.new_page()
    sign_in(page, gateway, ADMIN_KEY)
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("live").check()
    page.get_by_label("other").check()
    page.get_by_label("System").fill("Answer briefly.")
    page.get_by_label("User").fill("Say hello to the portal")
    shoot(page, "playground")
    page.get_by_role("button", name="Compare").click()
    for index, model in enumerate(("gpt-4o-mini", "gpt-4o")):
        column = page.get_by_test_id(f"column-{index}")
        expect(column.get_by_test_id("stats")).to_contain_text(f"fake/{model}")
        expect(column.get_by_test_id("stats")).to_contain_text("Tokens in/out")
        assert column.locator("pre.answer").inner_text().strip()  # the answer, streamed in
    shoot(page, "comparison")
    link = page.get_by_test_id("column-0").get_by_role("link", name="Save as an evaluation item")
    item = page.request.get(f"{gateway.url}{link.get_attribute('href')}")
    assert item.status == 200 and '"reference"' in item.text()
