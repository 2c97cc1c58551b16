"""Request preconditions on generations and metagenerations. Pure: no IO.

https://cloud.google.com/storage/docs/request-preconditions
`ifGenerationMatch=0` means "only if no live object has this name".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cloudlet.core.errors import CloudletError, InvalidArgument, PreconditionFailed

__all__ = ["Conditions", "NotModified", "parse_conditions"]


class NotModified(CloudletError):
    """A read whose ifGenerationNotMatch/ifMetagenerationNotMatch failed: HTTP 304."""

    code = 304
    status = "NOT_MODIFIED"
    reason = "notModified"


@dataclass(frozen=True)
class Conditions:
    if_generation_match: int | None = None
    if_generation_not_match: int | None = None
    if_metageneration_match: int | None = None
    if_metageneration_not_match: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Conditions:
        return cls(**{k: int(v) for k, v in data.items()})

    def __bool__(self) -> bool:
        return any(v is not None for v in asdict(self).values())

    def check(
        self, what: str, generation: int | None, metageneration: int | None, *, read: bool = False
    ) -> None:
        """Raise unless the current state (None: no such object) meets every condition."""
        gm, gnm = self.if_generation_match, self.if_generation_not_match
        mm, mnm = self.if_metageneration_match, self.if_metageneration_not_match
        current = generation or 0
        if gm is not None and gm != current:
            raise PreconditionFailed(
                f"At least one of the pre-conditions you specified did not hold: ifGenerationMatch"
                f"={gm} but {what} is at generation {current} (0 means it does not exist)."
            )
        if mm is not None and (metageneration is None or mm != metageneration):
            raise PreconditionFailed(
                f"At least one of the pre-conditions you specified did not hold: "
                f"ifMetagenerationMatch={mm} but {what} has metageneration {metageneration}."
            )
        failed = None
        if gnm is not None and gnm == current:
            failed = f"ifGenerationNotMatch={gnm}"
        if mnm is not None and metageneration is not None and mnm == metageneration:
            failed = f"ifMetagenerationNotMatch={mnm}"
        if failed:
            if read:
                raise NotModified(f"{what} is unchanged ({failed}).")
            raise PreconditionFailed(
                f"At least one of the pre-conditions you specified did not hold: {failed}."
            )


def _int(params: Mapping[str, str], key: str) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    try:
        number = int(value) if len(value) <= 20 else None
    except ValueError:
        number = None
    if number is None or not -(2**63) <= number < 2**63:
        raise InvalidArgument(f"Invalid value for {key}: '{value[:40]}' is not an int64.")
    return number


def parse_conditions(params: Mapping[str, str], prefix: str = "if") -> Conditions:
    """Read ifGenerationMatch & co (or, with prefix="ifSource", the source conditions)."""
    return Conditions(
        _int(params, f"{prefix}GenerationMatch"),
        _int(params, f"{prefix}GenerationNotMatch"),
        _int(params, f"{prefix}MetagenerationMatch"),
        _int(params, f"{prefix}MetagenerationNotMatch"),
    )
