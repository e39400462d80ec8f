"""The one exception type for a caller's mistake, shared by every package of the project.

``UserError`` means "the value you gave is wrong; here is what was expected". It is raised
where the value enters (a config, a preset name, a command-line flag, a path) and never for
a defect in the code. Entry points (``benchmarks.validation.cli_boundary``) print it as
one line and exit 2; anything else is a bug and keeps its traceback.

It subclasses ``ValueError`` so that Python callers that catch ``ValueError`` keep working.
"""
from __future__ import annotations


class UserError(ValueError):
    """A bad input value. The message names the value and says what was expected."""


class UnknownNameError(UserError, KeyError):
    """A name looked up in a fixed table (a preset, a version) that is not in it.

    Also a ``KeyError``, since it is a failed lookup; the message is printed as written
    (``KeyError`` alone would print it quoted).
    """

    __str__ = ValueError.__str__
