"""The customer pages in Spanish and in Brazilian Portuguese, in a real browser (Debian's chromium):
the dashboard, a channel page waiting for its scan (with the QR code) and connected, and the hand-off
page, each without an English string left on it; the language from the browser (the context's
locale, i.e. Accept-Language) and from the hand-off page's chooser.

Takes docs/screenshots/dashboard-pt-br.png and handoff-es.png (UPDATE_SCREENSHOTS=1), as the other
browser tests take theirs.
"""

import pytest
from playwright.sync_api import expect

from channels_app.models import Channel
from tests.test_customer_browser import PHONE, VIEWPORT, sandbox_control, screenshot
from tests.test_translations import english_left

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What each language calls what the test clicks and checks (the catalogues' translations).
WORDS = {
    "es": {
        "locale": "es-ES",
        "lang": "es",
        "username": "Nombre de usuario",
        "password": "Contraseña",
        "sign_in": "Iniciar sesión",
        "channels": "Canales",
        "new_channel": "Nuevo canal",
        "name": "Nombre",
        "create": "Crear canal",
        "waiting": "Esperando escaneo",
        "make_link": "Crear un enlace",
        "connected": "Conectado",
        "back": "← Canales",
        "handoff_heading": "Conectar “Recepción”",
        "linked": "El número está conectado",
    },
    "pt_BR": {
        "locale": "pt-BR",
        "lang": "pt-br",
        "username": "Usuário",
        "password": "Senha",
        "sign_in": "Entrar",
        "channels": "Canais",
        "new_channel": "Novo canal",
        "name": "Nome",
        "create": "Criar canal",
        "waiting": "Aguardando leitura",
        "make_link": "Criar um link",
        "connected": "Conectado",
        "back": "← Canais",
        "handoff_heading": "Conectar “Recepción”",
        "linked": "O número está conectado",
    },
}


def assert_no_english(page, language: str) -> None:
    """Nothing of the English source is left in what the page shows (its visible text)."""
    text = page.evaluate("document.body.innerText")
    assert english_left(text, language) == [], text


@pytest.fixture
def context_in(chromium):
    """A browser context whose language (Accept-Language, navigator.language) is `locale`."""
    contexts = []

    def make(locale: str):
        context = chromium.new_context(viewport=VIEWPORT, locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        refused = []
        page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
        page.refused = refused
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.mark.parametrize("language", ["es", "pt_BR"])
def test_the_customer_pages_and_the_handoff_page_speak_the_browser_language(
    portal, owner, background_worker, live_server, context_in, language
):
    sandbox, _ = portal
    words = WORDS[language]
    page = context_in(words["locale"])

    page.goto(f"{live_server.url}/app/login/")
    assert page.locator("html").get_attribute("lang") == words["lang"]
    assert_no_english(page, language)
    page.get_by_label(words["username"]).fill("alice")
    page.get_by_label(words["password"]).fill("alice-password")
    page.get_by_role("button", name=words["sign_in"]).click()
    expect(page.get_by_role("heading", name=words["channels"])).to_be_visible()
    assert_no_english(page, language)

    # A channel requested in the language: its page follows the setup until the QR code is shown.
    page.get_by_role("link", name=words["new_channel"]).click()
    assert_no_english(page, language)
    page.get_by_label(words["name"], exact=True).fill("Recepción")
    page.get_by_role("button", name=words["create"]).click()
    expect(page.locator("#connect img.qr")).to_be_visible()
    expect(page.locator(".steps li.current")).to_have_text(words["waiting"])
    assert_no_english(page, language)

    # The hand-off link, opened by whoever holds the phone in a browser of the same language.
    page.get_by_role("button", name=words["make_link"]).click()
    link = page.locator("#handoff-url").input_value()
    assert_no_english(page, language)
    phone = context_in(words["locale"])
    phone.goto(link)
    expect(phone.get_by_role("heading", name=words["handoff_heading"])).to_be_visible()
    expect(phone.locator("#connect img.qr")).to_be_visible()
    assert_no_english(phone, language)
    if language == "es":
        screenshot(phone, "handoff-es")

    # Connected: the channel page (live, without a reload) and the dashboard.
    channel = Channel.objects.get(name="Recepción")
    sandbox_control(sandbox, f"/channels/{channel.whapi_id}/scan", phone=PHONE, name="Alice")
    expect(page.locator(".success-title")).to_contain_text(f"+{PHONE}")
    # The link has done its job: the phone's page says so by itself.
    expect(phone.get_by_role("heading", name=words["linked"])).to_be_visible()
    assert_no_english(phone, language)
    page.reload()
    assert_no_english(page, language)
    page.get_by_role("link", name=words["back"]).click()
    expect(page.locator("tr", has_text="Recepción")).to_contain_text(words["connected"])
    assert_no_english(page, language)
    if language == "pt_BR":
        screenshot(page, "dashboard-pt-br")
    assert page.refused == [] and phone.refused == []


def test_the_handoff_page_chooser_changes_the_language_and_keeps_it(
    portal, owner, background_worker, live_server, context_in
):
    """A phone whose browser speaks English: the chooser switches the page to Portuguese, then
    Spanish, and the choice stays for the page's live updates and the next visit."""
    portal  # noqa: B018 (the portal and its sandbox, running)
    page = context_in("en-US")
    page.goto(f"{live_server.url}/app/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice-password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="New channel").click()
    page.get_by_label("Name", exact=True).fill("Recepción")
    page.get_by_role("button", name="Create channel").click()
    page.get_by_role("button", name="Make a link").click()
    link = page.locator("#handoff-url").input_value()

    phone = context_in("en-US")
    phone.goto(link)
    expect(phone.get_by_role("heading", name="Connect “Recepción”")).to_be_visible()
    phone.get_by_label("Language").select_option("pt-br")
    phone.get_by_role("button", name="Change").click()
    expect(phone.get_by_role("heading", name="Conectar “Recepción”")).to_be_visible()
    expect(phone.locator("#connect img.qr")).to_be_visible()  # the live update went on, in Portuguese
    expect(phone.locator(".steps li.current")).to_have_text("Aguardando leitura")
    assert_no_english(phone, "pt_BR")
    phone.reload()
    expect(phone.get_by_role("heading", name="Conectar “Recepción”")).to_be_visible()

    phone.get_by_label("Idioma").select_option("es")
    phone.get_by_role("button", name="Alterar").click()
    expect(phone.get_by_role("heading", name="Conectar “Recepción”")).to_be_visible()
    expect(phone.get_by_text("Escanea el código QR de abajo con WhatsApp en el teléfono.")).to_be_visible()
    assert_no_english(phone, "es")
    assert page.refused == [] and phone.refused == []
