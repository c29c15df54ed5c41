"""SLA: business time (`calendar`); policies and timers build on it."""

from intake.sla.calendar import BusinessCalendar, CalendarInvalidError, CalendarNeverOpensError, calendar_for

__all__ = ["BusinessCalendar", "CalendarInvalidError", "CalendarNeverOpensError", "calendar_for"]
