"""Thin Lambda entry points: parse the event, call one domain function, shape the answer.

Importing a handler module in Lambda (AWS_LAMBDA_FUNCTION_NAME set) is a cold start, on a customer's request. While
it runs, the garbage collector is off: an import makes hundreds of thousands of objects and almost no garbage, and
the collections they set off (every 700 allocations, the whole heap every 70,000) cost a cold start about 10 ms for
nothing. Each handler module's last line, `imported()`, turns it on again. Elsewhere (`intake serve`, the CLI, the
tests), where this package may be imported for its shared parts alone, the collector is left as it is.
"""

import gc
import os

_OFF_FOR_THE_IMPORT = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and gc.isenabled()
if _OFF_FOR_THE_IMPORT:
    gc.disable()


def imported() -> None:
    """The end of a handler module's import: the garbage collector runs again, if this package turned it off."""
    if _OFF_FOR_THE_IMPORT:
        gc.enable()
