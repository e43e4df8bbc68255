"""What a training summary (`summary.json` of the training CLIs) says about its run; torch-free."""
from __future__ import annotations


def training_wall_seconds(summary: dict) -> float | None:
    """The run's training wall time over every invocation that resumed it (`wall_seconds`); for a summary that
    cannot know that total (written before it was recorded, or resumed from such a checkpoint), the time of its own
    invocation; None when the summary records neither."""
    total = summary.get("wall_seconds")
    if total is not None:
        return total
    return summary.get("wall_seconds_this_invocation", summary.get("train_seconds"))
