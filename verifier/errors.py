"""One error family for everything nverify reports to a user, each with its exit code."""

from __future__ import annotations

EXIT_PROVEN = 0
EXIT_REFUTED = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3


class NVerifyError(Exception):
    """Root of all errors the CLI turns into one clear message."""

    exit_code = EXIT_USAGE


class UsageError(NVerifyError):
    """Bad command-line arguments."""


class BlobError(NVerifyError):
    """The blob cannot be read, decoded as a container, or found in it."""


class SpecError(NVerifyError):
    """The spec is malformed; the message carries file:line and the fix."""


class UnsupportedError(NVerifyError):
    """The input is well-formed but asks for something nverify does not model."""


class InternalError(NVerifyError):
    """A bug in nverify itself; never a verdict."""

    exit_code = EXIT_UNKNOWN
