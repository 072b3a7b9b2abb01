"""The customer's language: the catalogues are complete and compiled, and each page, message and mail
speaks the language the visitor (or the recipient) reads.

The language comes from a signed-in user's profile, else the language cookie (the chooser), else the
browser's Accept-Language, else English; the URLs are the same in every language.
"""

import ast
import gettext
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alerts import delivery, rules
from alerts.models import Event, Notification, Recipient
from channels_app import handoff
from channels_app.models import Channel, UserProfile
from tests.conftest import make_channel

ROOT = Path(__file__).resolve().parent.parent
LANGUAGES = ("es", "pt_BR")
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]|<[^>]+>|&\w+;")


def catalogue(language: str) -> list[dict]:
    """The entries of locale/<language>/LC_MESSAGES/django.po (header first): msgctxt, msgid,
    msgid_plural, msgstr (a list: one string, or one per plural form) and flags."""
    entries, entry, field = [], None, None
    text = (ROOT / "locale" / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if entry is not None:
                entries.append(entry)
            entry = None
            continue
        if line.startswith("#~"):
            raise AssertionError(f"{language}: an obsolete entry is left: {line}")
        entry = entry or {"msgctxt": None, "msgid": None, "msgid_plural": None, "msgstr": [], "flags": ""}
        if line.startswith("#,"):
            entry["flags"] += line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            value = ast.literal_eval(line)
            if field == "msgstr":
                entry["msgstr"][-1] += value
            else:
                entry[field] += value
        else:
            field, _, value = line.partition(" ")
            field = "msgstr" if field.startswith("msgstr") else field
            if field == "msgstr":
                entry["msgstr"].append(ast.literal_eval(value))
            else:
                entry[field] = ast.literal_eval(value)
    return entries


def english_phrases(language: str) -> list[str]:
    """What of the English source must not show on a page in `language`: the parts of every msgid
    between its placeholders and tags, of two words or more, that its translations do not keep."""
    entries = catalogue(language)[1:]
    translated = "\n".join(text for entry in entries for text in entry["msgstr"])
    phrases = set()
    for entry in entries:
        for source in filter(None, [entry["msgid"], entry["msgid_plural"]]):
            for part in PLACEHOLDER.split(source):
                part = part.strip(" .,:;()“”…·-–\n")
                if len(part.split()) >= 2 and part not in translated:
                    phrases.add(part)
    return sorted(phrases)


def english_left(text: str, language: str) -> list[str]:
    return [phrase for phrase in english_phrases(language) if phrase in text]


# ------------------------------------------------------------------------------------------------
# The catalogues
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_entry_is_translated_with_its_placeholders(language):
    entries = catalogue(language)
    header, entries = entries[0], entries[1:]
    assert "fuzzy" not in header["flags"]
    assert len(entries) > 300
    for entry in entries:
        where = f"{language}: {entry['msgid']!r}"
        assert "fuzzy" not in entry["flags"], f"{where} is fuzzy"
        assert all(entry["msgstr"]), f"{where} is not translated"
        sources = [entry["msgid"]] if entry["msgid_plural"] is None else [entry["msgid"], entry["msgid_plural"]]
        assert len(entry["msgstr"]) == len(sources), where
        for source, text in zip(sources, entry["msgstr"], strict=True):
            assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(source)), where


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_in_the_tree_is_the_po_file(language):
    """A fresh clone works without gettext: the .mo files are committed, and must say what the .po
    files say (`make messages` compiles them)."""
    folder = ROOT / "locale" / language / "LC_MESSAGES"
    with open(folder / "django.mo", "rb") as compiled:
        messages = gettext.GNUTranslations(compiled)._catalog
    expected = {}
    for entry in catalogue(language)[1:]:
        key = f"{entry['msgctxt']}\x04{entry['msgid']}" if entry["msgctxt"] else entry["msgid"]
        if entry["msgid_plural"] is None:
            expected[key] = entry["msgstr"][0]
        else:
            expected.update({(key, index): text for index, text in enumerate(entry["msgstr"])})
    compiled_entries = {key: text for key, text in messages.items() if key != ""}
    assert compiled_entries == expected, f"{folder}/django.mo is out of date: run `make messages`"


def test_the_catalogues_know_every_template_phrase():
    """A phrase added to a customer template without `make messages` would show in English: every
    `{% translate "…" %}` of templates/portal/ has its entry."""
    known = {entry["msgid"] for entry in catalogue("es")[1:]}
    phrases = set()
    for template in (ROOT / "templates" / "portal").rglob("*.*"):
        phrases |= set(re.findall(r'{% translate "([^"]+)"', template.read_text()))
    assert len(phrases) > 200
    assert sorted(phrases - known) == []


def test_the_languages_offered_are_the_catalogues():
    assert [code for code, _ in settings.LANGUAGES] == ["en", "es", "pt-br"]
    assert settings.LANGUAGE_CODE == "en"
    assert sorted(path.name for path in (ROOT / "locale").iterdir()) == sorted(LANGUAGES)


def test_the_script_shows_no_words_of_its_own():
    """portal.js says what the page gives it (data-msg-*, data-copied-label), in the page's language."""
    script = (ROOT / "static" / "portal" / "portal.js").read_text()
    for said in ("Loading the QR code", "The phone is linked", "Connection problem", "not available right now"):
        assert said not in script


# ------------------------------------------------------------------------------------------------
# Which language a page speaks
# ------------------------------------------------------------------------------------------------
def test_the_browser_language_chooses_and_english_is_the_default(client, alice, customer, channel):
    client.force_login(alice)
    url = reverse("channels_app:dashboard", args=[customer.code])
    english = client.get(url)
    assert english["Content-Language"] == "en"
    assert '<html lang="en">' in english.content.decode() and "1 of 5 channels in use" in english.content.decode()
    assert "Find channels" in english_left(english.content.decode(), "es")

    spanish = client.get(url, headers={"accept-language": "es-MX,es;q=0.9,en;q=0.5"})
    page = spanish.content.decode()
    assert spanish["Content-Language"] == "es" and "Accept-Language" in spanish["Vary"]
    assert '<html lang="es">' in page
    assert "1 de 5 canales en uso" in page and "Esperando escaneo" in page
    assert english_left(page, "es") == []

    portuguese = client.get(url, headers={"accept-language": "pt-BR"}).content.decode()
    assert '<html lang="pt-br">' in portuguese and "1 de 5 canais em uso" in portuguese
    assert "Aguardando leitura" in portuguese
    assert english_left(portuguese, "pt_BR") == []


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "name",
    ["members", "alerts", "events", "api_keys", "channel_create", "profile", "password_change", "two_factor"],
)
def test_every_customer_page_speaks_the_language(client, alice, customer, channel, name, language):
    client.force_login(alice)
    args = [] if name in ("profile", "password_change", "two_factor") else [customer.code]
    browser = language.replace("_", "-")  # pt_BR, the catalogue's folder: pt-BR, the browser's
    response = client.get(reverse(f"channels_app:{name}", args=args), headers={"accept-language": browser})
    assert response.status_code == 200
    assert english_left(response.content.decode(), language) == []


@pytest.mark.parametrize("name", ["login", "password_reset", "password_reset_done"])
def test_the_pages_without_a_login_speak_the_language_and_offer_the_chooser(db, client, name):
    response = client.get(reverse(f"channels_app:{name}"), headers={"accept-language": "es"})
    page = response.content.decode()
    assert 'action="/i18n/setlang/"' in page and english_left(page, "es") == []


def test_the_urls_are_the_same_in_every_language(client, alice, channel):
    client.force_login(alice)
    url = reverse("channels_app:channel", args=[channel.code])
    assert url.startswith("/app/channels/")
    for language in ("es", "pt-BR", "en"):
        response = client.get(url, headers={"accept-language": language})
        assert response.status_code == 200 and response.request["PATH_INFO"] == url


def test_the_handoff_page_has_a_chooser_kept_in_the_language_cookie(client, alice, channel):
    link = handoff.handoff_create(channel=channel, actor=alice)
    client.get(reverse("channels_app:handoff", args=[handoff.handoff_token(link)]))
    page_url = reverse("channels_app:handoff_page")
    page = client.get(page_url).content.decode()
    assert 'action="/i18n/setlang/"' in page and 'name="csrfmiddlewaretoken"' in page
    assert '<option value="pt-br" lang="pt-br">Português Brasileiro</option>' in page

    chosen = client.post(reverse("set_language"), {"language": "pt-br", "next": page_url})
    assert chosen.status_code == 302 and chosen["Location"] == page_url
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "pt-br"
    # The cookie wins over the browser's language.
    response = client.get(page_url, headers={"accept-language": "es"})
    page = response.content.decode()
    assert response["Content-Language"] == "pt-br"
    assert "Conectar “Shop bot”" in page and "Escaneie o QR code abaixo com o WhatsApp do celular." in page
    assert '<option value="pt-br" lang="pt-br" selected>' in page
    assert english_left(page, "pt_BR") == []
    # What the page polls, and the QR's refusals, speak the same language.
    status = client.get(reverse("channels_app:handoff_status")).json()
    assert "Aguardando leitura" in status["html"]


def test_the_chooser_keeps_the_csrf_check_and_the_content_security_policy(client, alice, channel):
    link = handoff.handoff_create(channel=channel, actor=alice)
    client.get(reverse("channels_app:handoff", args=[handoff.handoff_token(link)]))
    response = client.get(reverse("channels_app:handoff_page"))
    assert "form-action 'self'" in response["Content-Security-Policy"]
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert strict.post(reverse("set_language"), {"language": "es"}).status_code == 403


def test_form_errors_and_messages_speak_the_page_language(client, alice, channel):
    client.force_login(alice)
    spanish = {"accept-language": "es"}
    url = reverse("channels_app:channel_pairing_code", args=[channel.code])
    page = client.post(url, {"phone": "12"}, headers=spanish).content.decode()
    assert "Un número de teléfono tiene de 7 a 15 dígitos con su código de país; este tiene 2 dígitos." in page
    assert "Hay un error más abajo, en “Vincular con un código”" in page

    rename = reverse("channels_app:channel_rename", args=[channel.code])
    page = client.post(rename, {"name": "Ventas"}, headers=spanish).content.decode()
    # Whapi cannot be reached here: the refusal names the action in Spanish, Whapi's reason as it said it.
    assert "Shop bot (MANTIS-M72HC): Whapi no pudo cambiar el nombre del canal: could not connect" in page
    channel.refresh_from_db()
    assert "Whapi could not rename the channel" in channel.last_error  # what staff read stays English


def test_the_error_pages_speak_the_visitor_language(client, alice, charlie, channel):
    client.force_login(charlie)
    response = client.get(reverse("channels_app:channel", args=[channel.code]), headers={"accept-language": "es"})
    assert response.status_code == 404 and "Página no encontrada" in response.content.decode()


@pytest.mark.parametrize(
    ("state", "label", "shown"),
    [
        (Channel.State.CONNECTED, "Conectado", "A API está pronta para enviar e receber mensagens."),
        (Channel.State.DISCONNECTED, "Desconectado", "Desconectado: nenhum celular está mais conectado"),
        (Channel.State.EXPIRED, "Expirado", "Expirado: o tempo pago acabou; estendê-lo o traz de volta."),
        (Channel.State.ERROR, "Erro", "A Whapi informa um problema com este canal (ERROR)."),
    ],
)
def test_the_state_labels_and_meanings_are_translated(client, alice, project, state, label, shown):
    client.force_login(alice)
    fields = {"error_source": Channel.ErrorSource.HEALTH} if state == Channel.State.ERROR else {}
    channel = make_channel(project, state=state, connected_number="4915112345678", **fields)
    portuguese = {"accept-language": "pt-BR"}
    page = client.get(reverse("channels_app:channel", args=[channel.code]), headers=portuguese).content.decode()
    assert shown in page
    assert english_left(page, "pt_BR") == []
    dashboard = client.get(reverse("channels_app:dashboard", args=[project.customer.code]), headers=portuguese)
    assert f'<span class="badge state-{state}">{label}</span>' in dashboard.content.decode()


def test_the_profile_language_wins_and_is_read_once_per_session(client, alice, customer, channel):
    UserProfile.objects.create(user=alice, language="pt-br")
    client.force_login(alice)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "es"
    url = reverse("channels_app:dashboard", args=[customer.code])
    first = client.get(url, headers={"accept-language": "es"})
    assert first["Content-Language"] == "pt-br" and "1 de 5 canais em uso" in first.content.decode()
    with CaptureQueriesContext(connection) as queries:
        client.get(url, headers={"accept-language": "es"})
    assert not [q for q in queries.captured_queries if "profile" in q["sql"]]


def test_the_profile_page_changes_the_language_at_once(client, alice):
    client.force_login(alice)
    url = reverse("channels_app:profile")
    page = client.get(url, headers={"accept-language": "es"}).content.decode()
    assert "Como diga mi navegador" in page and '<option value="pt-br">Português (Brasil)</option>' in page
    response = client.post(url, {"language": "pt-br", "time_zone": ""}, headers={"accept-language": "es"}, follow=True)
    page = response.content.decode()
    assert "O seu perfil foi salvo." in page and '<html lang="pt-br">' in page
    assert UserProfile.objects.get(user=alice).language == "pt-br"
    # Blank again: the browser's language from the next page on.
    response = client.post(url, {"language": "", "time_zone": ""}, headers={"accept-language": "es"}, follow=True)
    assert "Tu perfil está guardado." in response.content.decode()
    assert client.get(url, headers={"accept-language": "es"})["Content-Language"] == "es"


def test_the_staff_console_stays_english(admin_client):
    page = admin_client.get(reverse("admin:index"), headers={"accept-language": "es"})
    assert page["Content-Language"] == "en" and "Log out" in page.content.decode()


# ------------------------------------------------------------------------------------------------
# Mails and alerts
# ------------------------------------------------------------------------------------------------
def test_the_password_reset_mail_is_in_the_language_of_whoever_asked(client, alice, mailoutbox):
    client.post(reverse("channels_app:password_reset"), {"email": alice.email}, headers={"accept-language": "es"})
    (mail,) = mailoutbox
    assert mail.subject == "Restablece tu contraseña de Portal de canales"
    assert mail.body.startswith("Hola, alice:") and "/app/password/reset/" in mail.body


def test_the_invitation_mail_is_in_the_language_of_the_page_it_was_sent_from(client, alice, customer, mailoutbox):
    client.force_login(alice)
    url = reverse("channels_app:member_invite", args=[customer.code])
    page = client.post(
        url, {"email": "dora@example.com", "role": "viewer"}, headers={"accept-language": "pt-BR"}, follow=True
    ).content.decode()
    assert "Um convite está a caminho de dora@example.com; ele vale por três dias." in page
    (mail,) = mailoutbox
    assert mail.subject == "Você foi convidado para Acme Corp em Portal de canais"
    assert "alice convida você para Acme Corp em Portal de canais" in mail.body and "como observador" in mail.body


def test_an_alert_is_written_in_each_recipient_language(alice, bob, customer, project):
    """A member is written to in their profile's language; an address, and a member who chose none,
    in English."""
    channel = make_channel(project, state=Channel.State.CONNECTED)
    UserProfile.objects.create(user=alice, language="es")
    UserProfile.objects.create(user=bob, time_zone="Europe/Lisbon")
    for user in (alice, bob):
        Recipient.objects.create(customer=customer, user=user, events=[Event.ERROR])
    Recipient.objects.create(customer=customer, name="IT", email="it@acme.example", events=[Event.ERROR])
    rules.tell_settings_drift(channel, ["the events"])
    told = {row.recipient.user_id: row for row in Notification.objects.select_related("recipient")}
    assert told[alice.pk].subject == "Shop bot: se cambió su configuración de webhooks"
    assert "Qué era distinto: the events" in told[alice.pk].body
    assert told[alice.pk].body.rstrip().split("\n")[-1].startswith("El canal: http")
    assert told[None].subject == "Shop bot: its webhook settings were changed"
    assert told[None].body.rstrip().split("\n")[-1].startswith("The channel: http")
    assert told[bob.pk].subject == "Shop bot: its webhook settings were changed"


def test_a_told_handoff_link_says_until_when_in_the_recipient_language(alice, customer, project):
    channel = make_channel(project, state=Channel.State.WAITING_SCAN)
    UserProfile.objects.create(user=alice, language="pt-br")
    Recipient.objects.create(customer=customer, user=alice, events=[Event.NOT_SCANNED])
    channel.state_changed_at = channel.state_changed_at - timedelta(hours=settings.SCAN_REMINDER_HOURS + 1)
    channel.save()
    assert rules.scan_reminders_due() == 1
    (row,) = Notification.objects.all()
    assert row.subject == "Shop bot: aguardando a leitura do QR code"
    body = delivery._with_handoff_link(row)
    assert re.search(r"Escaneie aqui: http\S+/connect/\S+ \(válido até [\d-]+ [\d:]+ UTC\)", body), body
