"""The value types config fields are made of: bounded durations, Kubernetes names, label values, paths, URLs, hosts.

Each type checks one kind of value and says what is wrong without repeating the value
(the message adds the value, cut short, where it may be shown).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field

from autoscaler.config.durations import DurationError, format_duration, parse_duration

_KUBERNETES_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
LONGEST_LABEL_VALUE = 253
"""The longest label value a config may match on (a DNS name's length): cloud providers' cluster names are at
most 100 characters, and one far longer is a mistake."""


class DurationRange:
    """The check of a duration field in [low, high] seconds ('30s', '1h30m' or a number of seconds)."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def __call__(self, value: object) -> float:
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise ValueError(exc.reason) from None
        if not self.low <= seconds <= self.high:
            raise ValueError(f"must be between {format_duration(self.low)} and {format_duration(self.high)}")
        return seconds


def duration_between(low: float, high: float) -> BeforeValidator:
    """The validator of a duration field in [low, high] seconds: `Annotated[float, duration_between(5, 600)]`."""
    return BeforeValidator(DurationRange(low, high))


def kubernetes_name(value: str) -> str:
    if not _KUBERNETES_NAME.fullmatch(value):
        raise ValueError("is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')")
    return value


def no_control_characters(value: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain line breaks or other control characters")
    return value


def label_value(value: str) -> str:
    """A Prometheus label value: any text, but no control characters (C0 or C1) or surrounding spaces.

    Quoting makes every other character safe in PromQL; control characters and a space at either end are
    mistakes that would select nothing, silently. (A lone surrogate, an undecodable byte of an environment
    variable, is refused before this: a strict `str` field takes only text that is valid UTF-8.)
    """
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("must not contain line breaks or other control characters")
    if value != value.strip():
        raise ValueError("must not start or end with a space")
    return value


def is_hostname(host: str) -> bool:
    """RFC 1123 host name syntax (underscores allowed, as in-cluster names sometimes have); not all-numeric."""
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def url_problem(url: str) -> str | None:
    """Why `url` is not a usable Prometheus base URL, or None. The reason never repeats the URL."""
    if CONTROL_CHARACTERS.search(url) or any(c.isspace() for c in url):
        return "must not contain spaces or control characters"
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError as exc:
        return "has an invalid port (must be 1-65535)" if "port" in str(exc).lower() else "is not a valid URL"
    if parsed.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    host = parsed.hostname or ""
    if not host:
        return "has no host"
    if not (is_ip(host) or is_hostname(host)):
        return "has an invalid host (an IP address or a DNS name; write an international name in its xn-- form)"
    if port == 0:
        return "has an invalid port (must be 1-65535)"
    if parsed.query or parsed.fragment or url.endswith(("?", "#")):
        return "must not have a query (?…) or fragment (#…): put an extra path in pathPrefix"
    return None


KubernetesName = Annotated[str, Field(min_length=1, max_length=253), AfterValidator(kubernetes_name)]
NamespaceName = Annotated[str, Field(min_length=1, max_length=63), AfterValidator(kubernetes_name)]
LabelValue = Annotated[str, Field(min_length=1, max_length=LONGEST_LABEL_VALUE), AfterValidator(label_value)]
FilePath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(no_control_characters)]

