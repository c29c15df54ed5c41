"""SLA: business time (`calendar`), policies and deadlines (`policy`), the clocks' bookkeeping (`tracker`) and
their Step Functions executions (`timers`, `state_machine.asl.json`).

The SLA contract, shared by the Python code, the state machine, the notifier and the tests:

- Targets: `first_response`, `next_response`, `resolution`.
- Timer item, one per ticket x target (written by `store.put_timer`/`end_timer`): PK `TICKET#<id>`, SK
  `SLA#<target>`; `generation` (N, +1 each restart), `state` (`running|paused|met|breached|stopped`), `due_at`,
  `started_at`, `policy`, `time` (`business|calendar`), `target_s`, `consumed_s`, `breached_at`, `execution`
  (this generation's input, JSON). The machine only GetItems it and, at the deadline, UpdateItems it with
  `generation = :g AND #state = :running` -> `breached`; an agent's response ends it with the same condition,
  so a response racing the deadline has exactly one outcome.
- Execution `<ticket>-<target>-<generation>` (`policy.execution_name`), input: `ticket_id`, `target`,
  `generation`, `generation_text`, `pk`, `sk`, `due_at`, `warnings` [{`at`, `label`}], `escalations` [{`level`,
  `at`}], every instant `...Z`, whole seconds rounded up (`policy.stamp`). Substitutions in the ASL:
  `${TableName}`, `${NotificationsQueueUrl}`.
- Notification (SQS body): `kind` (`warning|breach|escalation`), `ticket_id`, `target`, `generation`, `due_at`,
  `label` (warnings), `level` (escalations); sent once per `<ticket>#<target>#<generation>#<kind>#<label|level>`.
"""

from intake.sla.calendar import BusinessCalendar, CalendarNeverOpensError, calendar_for

__all__ = ["BusinessCalendar", "CalendarNeverOpensError", "calendar_for"]
