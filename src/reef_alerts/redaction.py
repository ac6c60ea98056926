"""What may reach a person's terminal or log: no secret, no control character, nothing huge.

Used by the settings (which know the secrets), the logging setup and every command's output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, quote_plus

MASK: Final = "***"

# `scheme://user:password@`: the password runs to the last `@` before the host part, so an
# unquoted `@` in it is masked whole. It stops at `/ ? #` and blanks, where the host part begins.
# The lookbehind and possessive `*+` keep this linear on long runs of letters (big SQL errors).
_URL_CREDENTIALS: Final = re.compile(
    r"(?P<head>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*+://[^\s:/?#@]*+)"
    r":(?P<password>[^\s/?#]+)@"
)
# libpq keyword/value connection strings, which some driver messages quote.
_DSN_PASSWORD: Final = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.I
)
# C0 and C1 controls, DEL, and the line and paragraph separators and bidirectional overrides
# that make a terminal or a log viewer show what is not there.
_CONTROLS: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def mask_url(url: str) -> str:
    """`url` with the password in its `user:password@` part replaced by ***."""
    return _URL_CREDENTIALS.sub(rf"\g<head>:{MASK}@", url)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret, and each password in a URL or `password=` pair, replaced by ***."""
    # Longest first, so a secret that contains a shorter one is not left half-masked.
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_CREDENTIALS.sub(rf"\g<head>:{MASK}@", text)
    return _DSN_PASSWORD.sub(rf"\g<head>{MASK}", text)


def url_secrets(url: str) -> set[str]:
    """Every spelling of the passwords `url` holds in `user:password@` parts."""
    found: set[str] = set()
    for match in _URL_CREDENTIALS.finditer(url):
        found.update(spellings(match["password"]))
    return found


def spellings(password: str) -> set[str]:
    """The password as written, and as URL-quoting would write it, so every form is masked."""
    return {password, quote(password, safe=""), quote_plus(password)} - {""}


def printable(text: str, limit: int | None = None) -> str:
    """`text` on one line a terminal shows as it is: control characters escaped (a newline as
    `\\n`, an escape as `\\x1b`), and cut to about `limit` characters, saying how long it was."""
    text = _CONTROLS.sub(_escaped, text)
    if limit is not None and len(text) > limit:
        return f"{text[:limit]}... ({len(text):,} characters)"
    return text


def _escaped(match: re.Match[str]) -> str:
    return match[0].encode("unicode_escape").decode("ascii")
