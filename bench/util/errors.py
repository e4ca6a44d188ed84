"""The one exception type that means "the user gave us something we cannot use".

The CLI turns a BenchError into one line on stderr and exit code 2. Everything else
is a bug or a run failure and is handled where it happens.
"""


class BenchError(ValueError):
    """Bad input: the message names the bad value and, where there are any, the valid choices."""


def choices_error(what: str, value, valid) -> BenchError:
    """Build the standard 'unknown X' error listing the valid choices."""
    listed = ", ".join(str(v) for v in valid)
    return BenchError(f"unknown {what} {value!r}; valid choices: {listed}")
