"""How the commands that write (apply, restore) open their client: a seam, so a test can
hand them a client of its own (a sandbox URL, a fault-injecting transport)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reconciler.commands.context import Settings, connect
from reconciler.heymarket import HeymarketClient

ConnectClient = Callable[[Settings, Mapping[str, str], bool], HeymarketClient]


def connect_configured(
    settings: Settings, environ: Mapping[str, str], insecure: bool
) -> HeymarketClient:
    return connect(settings, environ, insecure=insecure)
