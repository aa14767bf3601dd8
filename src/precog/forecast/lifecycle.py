"""Model version lifecycle (spec 8.1): which status changes are allowed.

    draft -> training | validating | testing | deprecated
    training -> validating | testing | deprecated
    validating -> testing | active | deprecated
    testing -> active | deprecated
    active -> deprecated
    deprecated: terminal (no reactivation)

Explicitly forbidden by the spec and so absent above: deprecated -> active, active -> draft, testing -> draft.
Activation also needs a recorded evaluation of at least MIN_ACTIVATION_SAMPLE predictions.
"""

from __future__ import annotations

from typing import Literal

from precog.forecast.errors import LifecycleError

Status = Literal["draft", "training", "validating", "testing", "active", "deprecated"]
STATUSES: tuple[Status, ...] = ("draft", "training", "validating", "testing", "active", "deprecated")

ALLOWED: dict[str, frozenset[str]] = {
    "draft": frozenset({"training", "validating", "testing", "deprecated"}),
    "training": frozenset({"validating", "testing", "deprecated"}),
    "validating": frozenset({"testing", "active", "deprecated"}),
    "testing": frozenset({"active", "deprecated"}),
    "active": frozenset({"deprecated"}),
    "deprecated": frozenset(),
}
MIN_ACTIVATION_SAMPLE = 100  # probability_models.yaml: >= 100 predictions before a model goes live


def check_transition(ref: str, current: str, target: str, *, validation_sample_size: int | None,
                     model_type: str) -> None:
    """Raise LifecycleError unless `current -> target` is allowed for this model version."""
    if target not in ALLOWED:
        raise LifecycleError(f"{target!r} is not a model status (one of: {', '.join(STATUSES)})")
    if current == target:
        raise LifecycleError(f"{ref} is already {current}")
    if target not in ALLOWED.get(current, frozenset()):
        allowed = ", ".join(sorted(ALLOWED.get(current, ()))) or "none: deprecated is final"
        raise LifecycleError(f"{ref}: {current} -> {target} is not allowed (from {current}: {allowed})")
    if target == "active" and model_type not in ("fixed",):
        n = validation_sample_size or 0
        if n < MIN_ACTIVATION_SAMPLE:
            raise LifecycleError(
                f"{ref} cannot become active: it has {n} evaluated predictions, needs at least "
                f"{MIN_ACTIVATION_SAMPLE} (run `precog forecast evaluate --model {ref} ... --record`)")
