"""Traffic splitting between versions of a service. Pure.

https://cloud.google.com/appengine/docs/standard/splitting-traffic: a split is a set of
allocations summing to 1, sharded by IP address (two decimal places), by the GOOGAPPUID cookie
(three decimal places) or at random. The same client point always falls on the same version
while the split is unchanged.
"""

from __future__ import annotations

import hashlib

from cloudlet.core.errors import InvalidArgument

__all__ = [
    "COOKIE_NAME",
    "SHARD_BY",
    "choose_version",
    "normalize_allocations",
    "parse_splits",
    "point_for_cookie",
    "point_for_ip",
]

COOKIE_NAME = "GOOGAPPUID"
SHARD_BY = ("IP", "COOKIE", "RANDOM")
_DECIMALS = {"IP": 2, "COOKIE": 3, "RANDOM": 3}


def parse_splits(text: str) -> dict[str, float]:
    """`v1=.5,v2=.5` (gcloud's --splits) → {"v1": 0.5, "v2": 0.5} (weights, not yet normalized)."""
    out: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        version, eq, weight = part.partition("=")
        if not eq or not version:
            raise InvalidArgument(
                f"Invalid split [{part}]: write VERSION=WEIGHT, such as --splits v1=.5,v2=.5"
            )
        try:
            value = float(weight)
        except ValueError:
            raise InvalidArgument(f"Invalid weight [{weight}] for version [{version}].") from None
        if value < 0:
            raise InvalidArgument(f"The weight of version [{version}] must not be negative.")
        out[version.strip()] = out.get(version.strip(), 0.0) + value
    if not out:
        raise InvalidArgument("No splits given: pass --splits VERSION=WEIGHT,...")
    return out


def normalize_allocations(weights: dict[str, float], shard_by: str) -> dict[str, float]:
    """Weights → fractions summing to exactly 1 at the shard's precision, as App Engine stores."""
    total = sum(weights.values())
    if total <= 0:
        raise InvalidArgument("The splits must give at least one version a positive weight.")
    decimals = _DECIMALS[shard_by]
    unit = 10**decimals
    raw = {v: w / total * unit for v, w in weights.items() if w > 0}
    units = {v: int(x) for v, x in raw.items()}
    # Largest remainder: hand the units lost to rounding down to the biggest remainders.
    missing = unit - sum(units.values())
    for version in sorted(raw, key=lambda v: raw[v] - units[v], reverse=True)[:missing]:
        units[version] += 1
    return {v: n / unit for v, n in sorted(units.items()) if n > 0}


def choose_version(allocations: dict[str, float], point: float) -> str:
    """The version whose slice of [0, 1) holds `point` (versions in sorted order)."""
    if not allocations:
        raise ValueError("no allocations")
    cumulative = 0.0
    last = ""
    for version in sorted(allocations):
        cumulative += allocations[version]
        last = version
        if point < cumulative:
            return version
    return last


def _hash_point(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def point_for_ip(ip: str) -> float:
    return _hash_point("ip:" + ip)


def point_for_cookie(value: str) -> float:
    """GOOGAPPUID holds a number 0-999 (App Engine's own cookies do); anything else is hashed."""
    if value.isascii() and value.isdigit():
        return (int(value) % 1000) / 1000
    return _hash_point("cookie:" + value)
