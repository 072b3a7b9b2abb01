"""Which URLs a customer's own webhook, and their events endpoints (events/), may point at: public
http(s) addresses only.

Whapi posts the channel's events to the webhook from its servers, and the portal's worker posts
events to the endpoints from inside the partner's network, so an address that only makes sense
inside a network (loopback, private, link-local, reserved, multicast, unspecified, an IPv4-mapped
IPv6 address of one of those, or a `*.localhost` name) is refused, and so is a host name that
resolves to one. With `DJANGO_DEBUG` off the URL must be https: the events carry messages.
"""

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

RESOLVE_TIMEOUT = 5.0  # seconds; the system resolver has no timeout of its own here
MAX_LENGTH = 500
# What a refused local address says, by who would post to it (`sender`).
LOCAL = {
    "Whapi": gettext_lazy("Whapi cannot reach a local address; use a public URL."),
    "The portal": gettext_lazy("The portal cannot reach a local address; use a public URL."),
}


def local_problem(sender: str) -> str:
    """Why `sender` refuses a local address, in the active language."""
    return str(LOCAL.get(sender, LOCAL["Whapi"]))


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to; raises OSError when it does not (or not within RESOLVE_TIMEOUT)."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        infos = pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM).result(RESOLVE_TIMEOUT)
    except FutureTimeout as exc:
        raise OSError(f"resolving {host} took longer than {RESOLVE_TIMEOUT:.0f} s") from exc
    finally:
        pool.shutdown(wait=False)
    return sorted({info[4][0] for info in infos})


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])  # an IPv6 scope id ("fe80::1%eth0") is not part of it
    if ip.version == 6 and (ip.ipv4_mapped or ip.sixtofour) is not None:
        ip = ip.ipv4_mapped or ip.sixtofour  # the IPv4 address it stands for
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_loopback)


# What a connection refused by public_only_session says (callers recognise it by this text).
PEER_REFUSED = "the host resolves to a local address"


def peer_allowed(address: str) -> bool:
    """Whether the portal may talk to the address a connection reached (see public_only_session)."""
    return _is_public(address)


class _PublicPeerOnly:
    """For urllib3's connections: the address actually connected to must be public. The URL was
    checked before the request, but its host name is resolved again to connect, and a name can
    answer a public address to the check and a local one to the connection (DNS rebinding)."""

    def _new_conn(self):
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        if not peer_allowed(peer):
            sock.close()
            raise urllib3.exceptions.NewConnectionError(self, PEER_REFUSED)
        return sock


class _PublicHTTPConnection(_PublicPeerOnly, urllib3.connection.HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicPeerOnly, urllib3.connection.HTTPSConnection):
    pass


class _PublicHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _PublicOnlyAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def public_only_session() -> requests.Session:
    """A requests session that connects to public addresses only, whatever a host name resolves to
    by the time of the request; proxies from the environment are not used (the peer would be the proxy)."""
    session = requests.Session()
    session.trust_env = False
    adapter = _PublicOnlyAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def url_problem(url: str, *, sender: str = "Whapi") -> str:
    """Why `sender` (Whapi, or the portal for events) may not post to `url`, in words fit to show; ""
    when it may."""
    if "\\" in url or any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        # A backslash reads as "/" to some URL parsers (Whapi's among them) and as part of the user
        # info to others: the host would not be the one checked here.
        return _("Enter the URL without spaces, backslashes or control characters.")
    parts = urlsplit(url)
    if parts.username is not None or "@" in parts.netloc:
        return _("Enter the URL without a user name or password in it.")
    if parts.scheme not in ("http", "https"):
        return _("Enter a full http(s) URL, e.g. https://example.com/whatsapp/hook.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return _("Enter a full http(s) URL, e.g. https://example.com/whatsapp/hook.")
    if host == "localhost" or host.endswith(".localhost"):
        return local_problem(sender)
    try:
        port = parts.port if parts.port is not None else (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        return _("The port in the URL is not a number from 1 to 65535.")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            return _("The host %(host)s cannot be found; check the URL.") % {"host": host}
    if not addresses or not all(_is_public(address) for address in addresses):
        return local_problem(sender)
    if parts.scheme != "https" and not settings.DEBUG:
        return _("Use an https URL: the events carry your messages.")
    return ""


def customer_url_problem(url: str, *, sender: str = "Whapi") -> str:
    """Why a customer may not give `url` as a webhook of theirs (their channel's own webhook, or an
    events endpoint): a well-formed http(s) URL of at most MAX_LENGTH characters that `url_problem`
    allows. "" when they may."""
    try:
        URLValidator(schemes=["https", "http"])(url)
    except ValidationError:
        return _("Enter a full http(s) URL, e.g. https://example.com/whatsapp/hook.")
    if len(url) > MAX_LENGTH:
        return _("The URL can be at most %(count)d characters long.") % {"count": MAX_LENGTH}
    return url_problem(url, sender=sender)
