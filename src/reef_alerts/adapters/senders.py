"""Channels through apprise (issue 15): every URL apprise knows, and JSON webhooks (`json://`,
`jsons://`) posted with an Alertmanager-shaped body, which apprise's own JSON plugin cannot
send. No secret of a channel's URL reaches an error or a log line."""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from typing import Any

import apprise
from apprise.plugins.custom_json import NotifyJSON

from reef_alerts.domain.notices import Message
from reef_alerts.ports.notifying import Channel
from reef_alerts.redaction import printable, redact, url_secrets

WEBHOOK_SCHEMES = ("json", "jsons")
"""Channels whose messages are Alertmanager webhook bodies, posted by the worker."""

_TOKENS = re.compile(r"[^/:@?&=#,]+")
_SHORTEST_SECRET = 4


class InvalidChannelError(ValueError):
    """A URL no apprise plugin takes (said without its secrets)."""


def check_url(url: str) -> str:
    """`url` as a channel may have it; its masked form to show. Raises InvalidChannelError."""
    if _scheme(url) in WEBHOOK_SCHEMES:
        parts = NotifyJSON.parse_url(url)  # type: ignore[no-untyped-call]
        if not parts or not parts.get("host"):
            raise InvalidChannelError(f"{masked(url)} is not a webhook URL (json://host/path)")
        return masked(url)
    if apprise.Apprise.instantiate(url) is None:
        raise InvalidChannelError(
            f"apprise cannot read {masked(url)} as a notification URL (a typo, a missing "
            "token?); see https://github.com/caronc/apprise/wiki for the URLs it takes"
        )
    return masked(url)


def masked(url: str) -> str:
    """`url` as apprise shows it privately (tokens and passwords masked), without the options
    it adds, and for a webhook without its path, which may be its secret (a Home Assistant
    webhook id); one that apprise cannot read, by its scheme alone: any part of it may be a
    token (a Pushover user key is its host)."""
    service = apprise.Apprise.instantiate(url)
    if service is None:
        scheme = _scheme(url)
        return f"{printable(scheme, 20)}://..." if scheme and "://" in url else "(not a URL)"
    shown = str(service.url(privacy=True)).split("?")[0]  # type: ignore[no-untyped-call]
    if _scheme(url) in WEBHOOK_SCHEMES:
        scheme, _, rest = shown.partition("://")
        shown = f"{scheme}://{rest.split('/')[0]}/..."
    return shown


def secrets_of(url: str) -> set[str]:
    """Every part of `url` that apprise masks when it shows it (those of _SHORTEST_SECRET
    characters or more: masking every `to` of a message would hide what it says), and its
    passwords, however short: what an error about the channel must not say."""
    shown = masked(url)
    found = url_secrets(url)
    found.update(
        token
        for token in _TOKENS.findall(url.partition("://")[2])
        if len(token) >= _SHORTEST_SECRET and token not in shown
    )
    return found


class AppriseSender:
    """The Sender port: apprise for every channel but JSON webhooks, which it posts itself."""

    def send(self, channel: Channel, message: Message, timeout: timedelta) -> str | None:
        secrets = secrets_of(channel.url)
        try:
            if _scheme(channel.url) in WEBHOOK_SCHEMES:
                error = _post(channel, message, timeout.total_seconds())
            else:
                error = _notify(channel, message, timeout.total_seconds())
        except Exception as failure:  # noqa: BLE001 - a plugin's failure is the message's, not the worker's
            error = f"{type(failure).__name__}: {failure}"
        return None if error is None else printable(redact(error, secrets), 300)


def _notify(channel: Channel, message: Message, timeout: float) -> str | None:
    service = apprise.Apprise()
    if not service.add(channel.url):
        return f"apprise cannot read {masked(channel.url)} as a notification URL"
    result = service.notify(
        body=message.body,
        title=message.title,
        body_format=apprise.NotifyFormat.TEXT,
        timeout=timeout,
    )
    if result:
        return None
    said = [
        str(entry.message)
        for entry in result.logs()
        if str(getattr(entry, "level", "")).upper() in _PROBLEMS
    ]
    if said:
        return "; ".join(dict.fromkeys(said[-2:]))  # the last two, each once
    return f"{masked(channel.url)} did not take the message"


_PROBLEMS = ("WARNING", "ERROR", "CRITICAL")


def _post(channel: Channel, message: Message, timeout: float) -> str | None:
    """POST the message's Alertmanager body to the webhook; apprise parses its URL (`+Header`,
    `-param`, `method=`, `verify=no`, `user:password@` for basic authentication). A redirect is
    an error: urllib would follow it as a GET without the body, headers and all."""
    parts: dict[str, Any] = NotifyJSON.parse_url(channel.url) or {}  # type: ignore[no-untyped-call]
    host = parts.get("host")
    if not host:
        return f"{masked(channel.url)} is not a webhook URL"
    scheme = "https" if parts.get("secure") else "http"
    port = f":{parts['port']}" if parts.get("port") else ""
    query = urllib.parse.urlencode(parts.get("params") or {})
    target = f"{scheme}://{host}{port}{parts.get('fullpath') or '/'}" + (
        f"?{query}" if query else ""
    )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "reef-alerts",
        "X-Reef-Alerts-Message-Id": message.id,
        **(parts.get("headers") or {}),
    }
    if parts.get("user"):
        user, password = (
            urllib.parse.unquote(parts.get(key) or "") for key in ("user", "password")
        )
        token = f"{user}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
    method = str((parts.get("qsd") or {}).get("method", "post")).upper()
    if method not in _METHODS:
        return f"method={method.lower()} is not one a webhook can take ({', '.join(_METHODS)})"
    body = json.dumps(message.payload).encode()
    request = urllib.request.Request(target, data=body, headers=headers, method=method)  # noqa: S310 - http(s) only, built above
    context = None if parts.get("verify", True) else ssl._create_unverified_context()  # noqa: S323 - the channel's verify=no asks for it
    opener = urllib.request.build_opener(
        _NoRedirects(), urllib.request.HTTPSHandler(context=context)
    )
    where = f"{scheme}://{host}{port}"
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:
        return f"{where} answered HTTP {error.code} {error.reason}"
    except TimeoutError:
        return f"{where} did not answer within {timeout:g}s"
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            return f"{where} did not answer within {timeout:g}s"
        return f"{where} could not be reached ({reason})"
    except OSError as error:
        return f"{where} could not be reached ({error})"
    return None


_METHODS = ("POST", "PUT", "PATCH")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the answer, an error: following it would lose the body and hand the headers to
    another host."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _scheme(url: str) -> str:
    return url.partition("://")[0].strip().lower()
