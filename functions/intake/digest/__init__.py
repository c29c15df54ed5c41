"""Team digests: the window (`window`), its figures (`figures`), their text and HTML (`view`), and publishing
them (`publish`): mail, S3 archive, `DigestPublished` event. See DESIGN.md, "Digests"."""

from intake.digest.window import PERIODS, Period, PeriodInvalidError, Window, window

__all__ = ["PERIODS", "Period", "PeriodInvalidError", "Window", "window"]
