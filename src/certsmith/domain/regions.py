"""Regions and partitions, from the partition data botocore ships (``botocore/data/partitions.json``).

Every region certsmith serves is a separate service, as in AWS; which partition a region belongs to
(``aws``, ``aws-cn``, ``aws-us-gov``, ``aws-iso*``, ``aws-eusc`` and any botocore adds) decides the
partition of its ARNs. The file is read as data (found without importing botocore), once.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Partition", "Partitions", "partition_for_region", "partitions"]


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    region_pattern: re.Pattern[str]
    regions: frozenset[str]

    def holds(self, region: str) -> bool:
        return region in self.regions or self.region_pattern.match(region) is not None


@dataclass(frozen=True, slots=True)
class Partitions:
    """The partitions in botocore's order; a region's partition is the first that lists it by name,
    else the first whose pattern matches it (botocore's own rule)."""

    partitions: tuple[Partition, ...]

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Partitions:
        parts = []
        for entry in document["partitions"]:
            regions = frozenset(name for name in entry.get("regions", {}) if not name.endswith("-global"))
            parts.append(Partition(entry["id"], re.compile(entry["regionRegex"]), regions))
        return cls(tuple(parts))

    def partition(self, region: str) -> str | None:
        """The partition of a region name, or None when no partition knows it."""
        for part in self.partitions:
            if region in part.regions:
                return part.name
        for part in self.partitions:
            if part.region_pattern.match(region):
                return part.name
        return None

    @property
    def names(self) -> list[str]:
        return [part.name for part in self.partitions]


def _partitions_file() -> Path:
    spec = importlib.util.find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("botocore is not installed; certsmith reads its partition data")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "partitions.json"


@functools.cache
def partitions() -> Partitions:
    return Partitions.from_document(json.loads(_partitions_file().read_text()))


@functools.lru_cache(maxsize=1024)
def partition_for_region(region: str) -> str | None:
    """``aws``, ``aws-cn``, ``aws-us-gov`` … for a region name; None for a name no partition knows."""
    return partitions().partition(region)
