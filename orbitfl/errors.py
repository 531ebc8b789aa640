"""The one exception type that reaches the user as a single line (and exit code 2)."""

from pathlib import Path


class InputError(ValueError):
    """Bad user input: the message names the file, the YAML path or the line, and the problem.

    Every layer raises this for anything a user can fix; the CLI prints ``str(err)`` on one
    line and exits with code 2, never with a traceback.
    """


def read_user_file(path: Path, what: str) -> str:
    """A user's text file, or an ``InputError`` naming it (missing, unreadable, not UTF-8)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read {what} ({err})") from None
