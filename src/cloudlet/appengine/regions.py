"""App Engine locations. Pure data.

https://cloud.google.com/appengine/docs/standard/locations: App Engine names two of its
regions without the trailing "1" that Compute Engine uses (us-central, europe-west); we accept
both spellings and record App Engine's.
"""

from __future__ import annotations

from cloudlet.core.errors import InvalidArgument

__all__ = ["REGIONS", "check_region", "cloud_region"]

REGIONS: tuple[str, ...] = (
    "asia-east1",
    "asia-east2",
    "asia-northeast1",
    "asia-northeast2",
    "asia-northeast3",
    "asia-south1",
    "asia-southeast1",
    "asia-southeast2",
    "australia-southeast1",
    "europe-central2",
    "europe-west",
    "europe-west2",
    "europe-west3",
    "europe-west6",
    "me-west1",
    "northamerica-northeast1",
    "southamerica-east1",
    "us-central",
    "us-east1",
    "us-east4",
    "us-west1",
    "us-west2",
    "us-west3",
    "us-west4",
)

_ALIASES = {"us-central1": "us-central", "europe-west1": "europe-west"}


def check_region(region: str) -> str:
    """Return App Engine's name for the region, or raise naming the valid choices."""
    location = _ALIASES.get(region, region)
    if location not in REGIONS:
        raise InvalidArgument(
            f"Invalid region [{region}]. Choose one of: {', '.join(REGIONS)} "
            "(us-central1 and europe-west1 are accepted for us-central and europe-west)."
        )
    return location


def cloud_region(location: str) -> str:
    """The Cloud region of an App Engine location (us-central is us-central1), as Cloud
    Scheduler and Cloud Tasks name it."""
    return {v: k for k, v in _ALIASES.items()}.get(location, location)
