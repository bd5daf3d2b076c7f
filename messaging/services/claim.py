"""Claiming texts and the last gate (docs/sending.md): queued -> sending with their quota in one
transaction (claim_batch), the attempt rows written by one statement just before the provider
calls (attempts_start), and giving back what is not called (unclaim)."""

import datetime
import functools

from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from billing.services import quota_release, quota_reserve, quota_reserve_many
from messaging.eligibility import RELEASABLE, TEXTABLE_NOW
from messaging.models import Attempt, Message
from messaging.scheduling import ANSWERS_AT_ONCE, SendWindow, waiting_note, zone
from messaging.services.release import Prepared
from projects.models import Participant, Project

Status = Message.Status


HELD_NOTE = "Held: the account's monthly quota is used up. It goes out when credits arrive."


def claim_batch(batch: list[Prepared], *, provider: str) -> tuple[list[Prepared], list[Prepared]]:
    """queued -> sending for messages of ONE project, and their quota, in one transaction
    (claim_batches with one group)."""
    if not batch:
        return [], []
    if any(p.message.project_id != batch[0].message.project_id for p in batch):
        raise ValueError("claim_batch takes the messages of one project.")
    return claim_batches([(batch, provider)])[0]


def claim_batches(
    groups: list[tuple[list[Prepared], str]],
) -> list[tuple[list[Prepared], list[Prepared]]]:
    """queued -> sending, and their quota, for the texts of SEVERAL links in one transaction.

    `groups`: per link, its texts (of one project: a project has one provider link) and the
    gateway slug that carries them. Returns per group (claimed, held): claimed rows are
    `sending` with their units reserved; held rows did not fit the quota (held, never dropped;
    a group is taken in order, so the first that does not fit and every later one wait). Rows
    another sender took, that were cancelled since they were read, or whose rule, project or
    provider link was paused since (RELEASABLE), are in neither list.

    Cost: one lock query, one UPDATE for every claimed row (and one for the held ones), and the
    quota's few queries per project: the sender claims the next turns of many slow links
    together, so the queries per text do not grow with the number of links
    (docs/sending.md, "Many links").
    """
    results: list[tuple[list[Prepared], list[Prepared]]] = [([], []) for _ in groups]
    wanted = [p.message.pk for batch, _ in groups for p in batch]
    if not wanted:
        return results
    now = timezone.now()
    with transaction.atomic():
        # Lock the rows still queued, in id order, skipping rows another sender is claiming
        # right now (PostgreSQL: no waiting on each other, so no deadlock between two claimers
        # of overlapping batches; SQLite: the IMMEDIATE transaction already serialises writers).
        # Only rows still releasable: a rule, project or link paused since the batch was read
        # claims nothing (the rows stay queued, and no quota is reserved for them). Only the
        # messages are locked (`of`), not the project, link or rule rows joined to check that.
        free = set(
            Message.objects.select_for_update(of=("self",), no_key=True, skip_locked=True)
            .filter(RELEASABLE, pk__in=wanted, status=Status.QUEUED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        fits_all: list[Prepared] = []
        providers: dict[int, str] = {}
        held_all: list[Prepared] = []
        # Quota in a fixed order (account, project): two senders reserving for the same
        # accounts take their usage rows in the same order, so they never deadlock.
        order = sorted(
            range(len(groups)),
            key=lambda i: (
                (groups[i][0][0].message.project.account_id, groups[i][0][0].message.project_id)
                if groups[i][0]
                else (0, 0)
            ),
        )
        batches = {i: [p for p in groups[i][0] if p.message.pk in free] for i in order}
        # Every project's texts at once, a few queries per account (the usual case: room).
        together = quota_reserve_many(
            units_by_project={
                batch[0].message.project: sum(p.units for p in batch)
                for batch in batches.values()
                if batch
            }
        )
        for i in order:
            batch, provider = batches[i], groups[i][1]
            if not batch:
                continue
            project = batch[0].message.project
            units = sum(p.units for p in batch)
            if project.pk in together or quota_reserve(project=project, units=units):
                fits = batch
            else:
                fits = []
                for prepared in batch:
                    if not quota_reserve(project=project, units=prepared.units):
                        break
                    fits.append(prepared)
            held = batch[len(fits) :]
            results[i] = (fits, held)
            fits_all += fits
            held_all += held
            providers.update({p.message.pk: provider for p in fits})
        if fits_all:
            Message.objects.filter(
                pk__in=[p.message.pk for p in fits_all], status=Status.QUEUED
            ).update(
                status=Status.SENDING,
                body=per_row("id", {p.message.pk: p.body for p in fits_all}, models.TextField()),
                segments=per_row(
                    "id", {p.message.pk: p.count.segments for p in fits_all}, models.IntegerField()
                ),
                encoding=per_row(
                    "id", {p.message.pk: p.count.encoding for p in fits_all}, models.CharField()
                ),
                units=per_row(
                    "id", {p.message.pk: p.units for p in fits_all}, models.IntegerField()
                ),
                reserved_at=now,
                provider=(
                    next(iter(providers.values()))
                    if len(set(providers.values())) == 1
                    else per_row("id", providers, models.CharField())
                ),
                updated_at=now,
            )
        if held_all:
            Message.objects.filter(
                pk__in=[p.message.pk for p in held_all], status=Status.QUEUED
            ).update(status=Status.HELD, units=0, error=HELD_NOTE, updated_at=now)
    for prepared in fits_all:
        message = prepared.message
        message.status = Status.SENDING
        message.body = prepared.body
        message.segments = prepared.count.segments
        message.encoding = prepared.count.encoding
        message.units = prepared.units
        message.reserved_at = now
        message.provider = providers[message.pk]
        message.updated_at = now
    for prepared in held_all:
        prepared.message.status = Status.HELD
        prepared.message.units = 0
    return results


def per_row(key: str, values: dict[int, object], output_field) -> RawSQL:
    """`CASE <key> WHEN <id> THEN <value> ... END`: one value per row in a single UPDATE.

    Plain SQL that SQLite and PostgreSQL both read; ids and integers are written as integer
    literals (they are ours, never input), text goes as a parameter. Django's
    Case(When(pk=...)) says the same but costs ~0.5 ms per row to build, which the sender,
    recording hundreds of texts a second on one thread, cannot afford.
    """
    parts, params = [], []
    for pk, value in values.items():
        if isinstance(value, int):
            parts.append(f"WHEN {int(pk)} THEN {int(value)}")
        else:
            parts.append(f"WHEN {int(pk)} THEN %s")
            params.append(value)
    return RawSQL(  # noqa: S611 - text goes as parameters; ids and integers are int()
        f"CASE {connection.ops.quote_name(key)} {' '.join(parts)} END",
        params,
        output_field=output_field,
    )


def unclaim(batch: list[Prepared]) -> int:
    """Give back claimed messages that were never handed to the provider: sending -> queued,
    their quota released. (The sender stops with rows claimed ahead of their turn.)"""
    return _requeue_claimed([p.message for p in batch])


def _requeue_claimed(
    messages: list[Message],
    *,
    status: str = Status.QUEUED,
    error: str | None = None,
    until: dict[int, tuple[datetime.datetime, str]] | None = None,
) -> int:
    """sending -> queued (or `status`) for these rows under our claims, when no call was started
    for them, and their units released. Rows the sweep or another sender took since are left
    alone. `until`: per row, when it may go again and the note saying so."""
    by_project: dict[int, list[Message]] = {}
    for message in messages:
        by_project.setdefault(message.project_id, []).append(message)
    returned = 0
    now = timezone.now()
    for group in by_project.values():
        with transaction.atomic():
            ids = set(
                Message.objects.select_for_update(no_key=True)
                .filter(_claimed_by_us(group), status=Status.SENDING)
                .order_by("pk")
                .exclude(attempt_log__outcome=Attempt.Outcome.STARTED)
                .values_list("pk", flat=True)
            )
            if not ids:
                continue
            update = {"status": status, "units": 0, "updated_at": now}
            if error is not None:
                update["error"] = error
            if until:
                adapt = connection.ops.adapt_datetimefield_value
                update["not_before"] = per_row(
                    "id", {pk: adapt(until[pk][0]) for pk in ids}, models.DateTimeField()
                )
                update["error"] = per_row(
                    "id", {pk: until[pk][1] for pk in ids}, models.TextField()
                )
            Message.objects.filter(pk__in=ids).update(**update)
            mine = [m for m in group if m.pk in ids]
            for reserved_at, units in _units_by_reservation(mine).items():
                quota_release(project=mine[0].project, units=units, reserved_at=reserved_at)
            for message in mine:
                message.status = status
                message.units = 0
            returned += len(ids)
    return returned


def _claimed_by_us(messages: list[Message]) -> Q:
    """These rows under the claims we made (a claim stamps `reserved_at`): a row requeued and
    claimed again by another sender since has another stamp."""
    mine = Q(pk__in=[])
    for reserved_at, ids in _claims(messages).items():
        mine |= Q(pk__in=ids, reserved_at=reserved_at)
    return mine


def _claims(messages: list[Message]) -> dict:
    """The messages' ids by the claim (its `reserved_at` stamp) they were taken under."""
    claims: dict = {}
    for message in messages:
        claims.setdefault(message.reserved_at, []).append(message.pk)
    return claims


def _units_by_reservation(messages: list[Message]) -> dict:
    units: dict = {}
    for message in messages:
        units[message.reserved_at] = units.get(message.reserved_at, 0) + message.units
    return units


def attempts_start(
    messages: list[Message], *, now: datetime.datetime | None = None
) -> list[Message]:
    """THE LAST GATE (docs/sending.md): write the attempt rows of claimed messages about to be
    handed to the provider, and return the ones that may be called.

    One statement (`_gate_statement`) decides, at the moment of the call, from what the
    database holds then, nothing decided at fill or claim being trusted: the row is still
    `sending` under THIS claim (its `reserved_at`: not swept, not claimed by another sender
    since); its rule, project and provider link are not paused (RELEASABLE); its participant
    is not on the suppression list, still consents, has not withdrawn and has a usable number
    (TEXTABLE_NOW); and the sending hours, as they stand in the database, are open now in the
    participant's zone (the hours and zones the window was computed from must be unchanged:
    `_hours_unchanged`). Only the rows that pass get attempt rows, written by that same
    statement, so no call starts for a text after an opt-out, a withdrawal, a pause or the
    close of the hours has committed.

    What fails the gate is given back with its quota released: an opted-out, withdrawn or
    unconsented participant's text is cancelled; a text whose hours closed waits for their
    next opening; a paused one goes back to the queue. An attempt row still `started` later
    means the call may have happened: never again. Each returned message carries
    `window_closes_at` (UTC; None for HELP, which ignores the hours): the pool thread does not
    call after it (sender._call).
    """
    if not messages:
        return []
    now = now or timezone.now()
    mine = _claimed_by_us(messages)
    closed: dict[int, datetime.datetime] = {}  # pk -> next opening of the sending hours
    for message in messages:
        message.window_closes_at = None
        if message.kind in ANSWERS_AT_ONCE:
            continue  # a HELP answer, a survey's next question: they answer the participant
        window, tz = _window_of(message)
        if window.allows(now, tz):
            message.window_closes_at = window.closes_after(now, tz)
        else:
            closed[message.pk] = window.next_opening(now, tz)
    open_ones = [m for m in messages if m.pk not in closed]
    started: set[int] = set()
    if open_ones:
        started = _gate_statement(_gate_eligible(open_ones, mine), now)
    if len(started) != len(messages):
        refused = [m for m in messages if m.pk not in started]
        messages = [m for m in messages if m.pk in started]
        _gate_refused(refused, closed, now)
    for message in messages:
        message.updated_at = now
    return messages


def _gate_eligible(messages: list[Message], mine: Q) -> tuple[str, tuple]:
    """The ids among `messages` that pass the gate, as SQL and parameters: the conditions that
    are always the same (RELEASABLE, TEXTABLE_NOW, `sending`) compiled once per process
    (`_gate_base`), this call's (the claims, the hours as judged, the ids) written after them.
    Compiling all of it with the ORM cost ~1.5 ms for every start, the sender's largest cost
    on a fast link. Falls back to the ORM if the compiled base does not have the expected shape.
    """
    base = _gate_base(connection.vendor)
    if base is None:
        eligible = (
            Message.objects.filter(mine, RELEASABLE, TEXTABLE_NOW, status=Status.SENDING)
            .filter(_hours_unchanged(messages))
            .order_by()
            .values_list("id", flat=True)
        )
        return eligible.query.sql_with_params()
    sql, params = base
    q = connection.ops.quote_name
    message, project, participant = (
        q(Message._meta.db_table),
        q(Project._meta.db_table),
        q(Participant._meta.db_table),
    )
    adapt = connection.ops.adapt_datetimefield_value
    extra: list = []

    def ids_in(ids: list[int]) -> str:
        return f"{message}.{q('id')} IN ({', '.join(str(int(pk)) for pk in ids)})"

    mine_sql = []
    for reserved_at, ids in _claims(messages).items():
        if reserved_at is None:
            mine_sql.append(f"({ids_in(ids)} AND {message}.{q('reserved_at')} IS NULL)")
        else:
            mine_sql.append(f"({ids_in(ids)} AND {message}.{q('reserved_at')} = %s)")
            extra.append(adapt(reserved_at))
    hours_sql = []
    for key, ids in _hours_groups(messages).items():
        parts = [ids_in(ids)]
        for (model, name), value in zip(HOURS_COLUMNS, key, strict=True):
            field = model._meta.get_field(name)
            value = list(value) if name == "send_days" else value
            table = project if model is Project else participant
            parts.append(f"{table}.{q(field.column)} = %s")
            extra.append(field.get_db_prep_value(value, connection, prepared=False))
        hours_sql.append(f"({' AND '.join(parts)})")
    all_ids = [m.pk for m in messages]
    sql = (
        f"{sql} AND {ids_in(all_ids)} AND ({' OR '.join(mine_sql)}) AND ({' OR '.join(hours_sql)})"
    )
    return sql, (*params, *extra)


# The sending hours a text was judged by (`_hours_groups`' key, in order): the gate requires them
# unchanged (`_hours_unchanged` says the same with the ORM).
HOURS_COLUMNS = (
    (Project, "send_window_start"),
    (Project, "send_window_end"),
    (Project, "send_days"),
    (Project, "time_zone"),
    (Participant, "time_zone"),
)


@functools.cache
def _gate_base(vendor: str) -> tuple[str, tuple] | None:
    """The gate's fixed conditions, compiled once: `SELECT id FROM message JOIN project, link,
    rule, participant WHERE RELEASABLE AND TEXTABLE_NOW AND status = 'sending'`. None when the
    SQL is not what `_gate_eligible` appends to (the joined tables under their own names, the
    WHERE last): it then compiles everything with the ORM."""
    sql, params = (
        Message.objects.filter(RELEASABLE, TEXTABLE_NOW, status=Status.SENDING)
        .order_by()
        .values_list("id", flat=True)
        .query.sql_with_params()
    )
    q = connection.ops.quote_name
    joined = all(f"JOIN {q(model._meta.db_table)} ON" in sql for model in (Project, Participant))
    if not joined or " WHERE " not in sql or not sql.endswith(")"):
        return None
    return sql, tuple(params)


def _gate_statement(sql_params: tuple[str, tuple], now: datetime.datetime) -> set[int]:
    """ONE statement (docs/sending.md, section 4): the attempt rows of the `eligible` messages;
    the ids it wrote. Alone it is atomic, so it needs no transaction of its own (one statement
    per start, whatever the number of texts).

    PostgreSQL: a data-modifying WITH whose UPDATE touches the rows' `updated_at`: it locks them
    and re-checks `status` if another transaction changed them meanwhile (the sweep requeueing a
    stranded row waits for it, then no longer finds it stale). SQLite cannot UPDATE inside WITH,
    and needs no lock: the INSERT reads the eligible rows while holding the database's one write
    lock, so no other writer (the sweep included) moves them in between.
    """
    inner, params = sql_params
    q = connection.ops.quote_name
    message, attempt = q(Message._meta.db_table), q(Attempt._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(now)
    columns = ", ".join(
        q(c)
        for c in (
            "message_id",
            "started_at",
            "outcome",
            "provider_message_id",
            "error_code",
            "error",
        )
    )
    values = "%s, %s, '', '', ''"
    # Names are the models' quoted table and column names; values and the WHERE are parameters.
    if connection.vendor == "postgresql":
        sql = (
            f"WITH gate AS (UPDATE {message} SET {q('updated_at')} = %s "  # noqa: S608
            f"WHERE {q('status')} = %s AND {q('id')} IN ({inner}) RETURNING {q('id')}) "
            f"INSERT INTO {attempt} ({columns}) SELECT gate.{q('id')}, {values} FROM gate "
            f"RETURNING {q('message_id')}"
        )
        params = (stamp, Status.SENDING.value, *params, stamp, Attempt.Outcome.STARTED.value)
    else:
        sql = (
            f"INSERT INTO {attempt} ({columns}) SELECT {q('id')}, {values} "  # noqa: S608
            f"FROM {message} WHERE {q('id')} IN ({inner}) RETURNING {q('message_id')}"
        )
        params = (stamp, Attempt.Outcome.STARTED.value, *params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


def attempts_not_called(messages: list[Message], *, hours_closed: bool = True) -> int:
    """The pool thread did not call these: their attempt rows go (no call was made), their
    quota is released, and they wait for the next opening of the sending hours (which closed
    before the text's turn), or (`hours_closed=False`: the link's calls were all in flight for
    too long, sender.SLOT_WAIT) they are queued again as they were."""
    if not messages:
        return 0
    until = _next_openings(messages) if hours_closed else None
    with transaction.atomic():
        Attempt.objects.filter(
            message__in=Message.objects.filter(_claimed_by_us(messages), status=Status.SENDING),
            outcome=Attempt.Outcome.STARTED,
        ).delete()
        return _requeue_claimed(messages, until=until)


def _next_openings(messages: list[Message]) -> dict[int, tuple[datetime.datetime, str]]:
    """Per message, the next opening of its sending hours after the close, and the note."""
    now = timezone.now()
    until = {}
    for message in messages:
        window, tz = _window_of(message)
        # Still open for a last moment, maybe: the next opening after this close.
        closes = window.closes_after(now, tz) if window.allows(now, tz) else now
        opening = window.next_opening(closes, tz)
        until[message.pk] = (opening, waiting_note(opening, tz))
    return until


def _window_of(message: Message) -> tuple[SendWindow, object]:
    project, participant = message.project, message.participant
    return SendWindow.for_project(project), zone(participant.time_zone or project.time_zone)


def _hours_groups(messages: list[Message]) -> dict[tuple, list[int]]:
    """The messages by the sending hours and zones they were judged by (HOURS_COLUMNS)."""
    groups: dict[tuple, list[int]] = {}
    for message in messages:
        project, participant = message.project, message.participant
        key = (  # not per project: many projects share the same hours (one condition)
            project.send_window_start,
            project.send_window_end,
            tuple(project.send_days),
            project.time_zone,
            participant.time_zone,
        )
        groups.setdefault(key, []).append(message.pk)
    return groups


def _hours_unchanged(messages: list[Message]) -> Q:
    """The sending hours and zones each message's window was judged by are still the ones in the
    database (an administrator may have narrowed them since the sender read the project)."""
    condition = Q(pk__in=[])
    for (start, end, days, project_zone, participant_zone), ids in _hours_groups(messages).items():
        condition |= Q(
            pk__in=ids,
            project__send_window_start=start,
            project__send_window_end=end,
            project__send_days=list(days),
            project__time_zone=project_zone,
            participant__time_zone=participant_zone,
        )
    return condition


def _gate_refused(refused: list[Message], closed: dict, now: datetime.datetime) -> None:
    """Give back what the last gate refused (only rows still ours: not swept, not claimed
    again), with its quota: cancelled when the participant may no longer be texted, waiting
    for the next opening when the hours closed, queued again otherwise (paused, or the hours
    changed: prepared afresh)."""
    if not refused:
        return
    untextable = set(
        Message.objects.filter(pk__in=[m.pk for m in refused])
        .exclude(TEXTABLE_NOW)
        .values_list("pk", flat=True)
    )
    cancel = [m for m in refused if m.pk in untextable]
    waiting = [m for m in refused if m.pk not in untextable and m.pk in closed]
    requeue = [m for m in refused if m.pk not in untextable and m.pk not in closed]
    _requeue_claimed(
        cancel,
        status=Status.CANCELLED,
        error="Cancelled just before sending: the participant opted out, withdrew or can no "
        "longer be texted.",
    )
    for message in waiting:
        window, tz = _window_of(message)
        message.not_before = closed[message.pk]
        message.error = waiting_note(closed[message.pk], tz)
    _requeue_claimed(waiting, until={m.pk: (m.not_before, m.error) for m in waiting})
    _requeue_claimed(requeue)
