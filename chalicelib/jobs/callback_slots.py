"""How many webhook attempts of one owner are in flight: a few leased slots per owner.

A receiver that answers slowly holds a worker for up to an attempt's deadline,
and workers are shared with file work, so one owner with many ended jobs and a
slow receiver could take them all. Its attempts POST only while holding one of
its `capacity` slots (chalicelib.webhooks.delivery says how many):

  pk=WEBHOOK_SLOTS#<owner>  sk=SLOT#<n>   holder, heldUntil (epoch s), ttl

A slot is taken with one conditional write (free, or its lease ran out) and
released with another, conditioned on still being its holder's. A worker that
dies holding one frees it when the lease ends: the longest an attempt can take.
Jobs without an owner (AUTH_MODE=none) share one. The items carry neither
`active` nor `owner`, so no index lists them, and `ttl` removes one a leak left.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from botocore.exceptions import ClientError

from chalicelib.aws.clients import error_code
from chalicelib.models import utc_now

ANONYMOUS = "-"  # the owner of jobs created without an API key (key ids are hex)
LEAKED_SLOT_TTL_SECONDS = 3600  # past its lease a slot is free anyway; TTL only tidies the table


@dataclass(frozen=True)
class Slot:
    key: dict
    holder: str


class WebhookSlots:
    def __init__(
        self,
        table: Any,
        clock: Callable[[], datetime] = utc_now,
        pick: Callable[[int], int] = random.randrange,
    ) -> None:
        """`pick(n)` chooses the slot to try first, so concurrent takers spread over the slots."""
        self._table, self._clock, self._pick = table, clock, pick

    def take(self, owner: str | None, holder: str, capacity: int, lease_seconds: int) -> Slot | None:
        """One of `owner`'s `capacity` slots for `holder`, for at most `lease_seconds`; None while all are held.

        Costs one write when a slot is free, `capacity` (failed, conditional) writes when none is."""
        now = int(self._clock().timestamp())
        first = self._pick(capacity)
        for offset in range(capacity):
            key = _slot_key(owner, (first + offset) % capacity)
            try:
                self._table.update_item(
                    Key=key,
                    UpdateExpression="SET holder = :holder, heldUntil = :until, #ttl = :ttl",
                    ConditionExpression="attribute_not_exists(heldUntil) OR heldUntil <= :now",
                    ExpressionAttributeNames={"#ttl": "ttl"},  # TTL is a reserved word
                    ExpressionAttributeValues={
                        ":holder": holder,
                        ":until": now + lease_seconds,
                        ":ttl": now + lease_seconds + LEAKED_SLOT_TTL_SECONDS,
                        ":now": now,
                    },
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue  # held by another attempt: try the next slot
                raise
            return Slot(key, holder)
        return None

    def release(self, slot: Slot) -> None:
        """Frees `slot`, unless its lease ran out and another attempt holds it now. An update, not a
        delete: the worker's role may not delete items (infra/chalice-overrides.yaml); `ttl` does."""
        try:
            self._table.update_item(
                Key=slot.key,
                UpdateExpression="REMOVE holder, heldUntil",
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": slot.holder},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise


def _slot_key(owner: str | None, index: int) -> dict:
    return {"pk": f"WEBHOOK_SLOTS#{owner or ANONYMOUS}", "sk": f"SLOT#{index}"}
