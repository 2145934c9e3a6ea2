"""Settings from ``reconciler.yaml`` (or ``--config FILE``). Every key has a safe default."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG_FILE = "reconciler.yaml"
DEFAULT_API_URL = "https://api.heymarket.com"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    url: str = DEFAULT_API_URL
    requests_per_minute: int = 500


@dataclass(frozen=True, slots=True)
class OwnershipSettings:
    marker_field: str = "Managed by"
    # None means "the name of the directory holding the config" (resolved on load).
    owner: str = "reconciler"


@dataclass(frozen=True, slots=True)
class PruneSettings:
    max_deletes: int = 25
    max_delete_percent: float = 5.0
    protect: tuple[str, ...] = ()
    backup_dir: Path = Path(".reconciler/backups")


@dataclass(frozen=True, slots=True)
class OutputSettings:
    mask_pii: bool = False


@dataclass(frozen=True, slots=True)
class Config:
    contacts: Path = Path("contacts")
    api: ApiSettings = field(default_factory=ApiSettings)
    ownership: OwnershipSettings = field(default_factory=OwnershipSettings)
    prune: PruneSettings = field(default_factory=PruneSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    # The file it was read from, or None when defaults were used.
    source: Path | None = None
