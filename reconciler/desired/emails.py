"""Email addresses checked for syntax, as ``email-validator`` reads them: never a network
lookup (``check_deliverability=False``), so ``validate`` gives the same answer offline.

The library spends most of its time on the domain, and a contacts repository holds many
addresses over few domains: an address whose local part is a plain dot-atom (which the
library always accepts up to 64 characters) is checked through its domain alone, once per
domain. Anything else goes through the library whole."""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email
from email_validator import __version__ as _library_version

# Part of the parse cache's key: a file cached as valid is checked again when the rule is.
EMAIL_RULE = f"email-validator {_library_version}, no deliverability check"

# RFC 5322 atext, dot-separated: the local parts the library accepts without a second look.
_PLAIN_LOCAL_PART = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)
_MAX_LOCAL_PART = 64
_MAX_ADDRESS = 254


def _library_problem(address: str) -> str | None:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as error:
        return str(error)
    return None


@functools.lru_cache(maxsize=4096)
def _domain_problem(domain: str) -> str | None:
    return _library_problem(f"a@{domain}")


def email_problem(value: str) -> str | None:
    """Why ``value`` (trimmed, as the account stores it) is not an email address, or
    ``None`` when it is one."""
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if (
        at
        and len(local) <= _MAX_LOCAL_PART
        and len(address) <= _MAX_ADDRESS
        and _PLAIN_LOCAL_PART.fullmatch(local)
        and _domain_problem(domain) is None
    ):
        return None
    return _library_problem(address)


def is_email(value: str) -> bool:
    return email_problem(value) is None
