"""Thin Lambda entry points: parse the event, call one domain function, shape the answer.

Importing a handler module is a Lambda cold start, on a customer's request. While it runs, the garbage collector is
off: an import makes hundreds of thousands of objects and almost no garbage, and the collections they set off
(every 700 allocations, the whole heap every 70,000) cost a cold start about 10 ms for nothing. Each handler
module's last line, `imported()`, turns it on again.
"""

import gc

gc.disable()


def imported() -> None:
    """The end of a handler module's import: the garbage collector runs again."""
    gc.enable()
