"""django-q2 tasks: thin, take ids, call services."""

from projects.services import det, participants, sync


def participant_sync(run_id: int) -> None:
    """Run one queued participant sync (a duplicate delivery finds it claimed and stops)."""
    sync.sync_run_execute(run_id=run_id)


def participant_sync_all() -> int:
    """Scheduled every 15 minutes: write the opt-outs still waiting for REDCap, then queue syncs
    for linked, mapped, active or paused projects."""
    participants.optout_write_backs_retry()
    det.refresh_drain_kick_if_waiting()  # re-reads of saved records whose task was lost
    return sync.sync_all_due()


def optout_write_back(participant_id: int) -> None:
    """Write one participant's pending opt-out (or opt-in) to REDCap. Lost or failed, it stays
    pending and the 15-minute schedule above writes it."""
    participants.participant_optout_write_back(participant_id=participant_id)


def record_refresh_drain() -> int:
    """Hand each saved record to its read once its saves have settled (one drain at a time;
    docs/redcap.md, "Coalescing")."""
    return det.refresh_drain()


def record_refresh(refresh_id: int) -> None:
    """Read one record REDCap said was saved, update its participant, send `record_saved`."""
    det.record_refresh_execute(refresh_id=refresh_id)
