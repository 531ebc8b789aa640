"""The one exception type that reaches the user as a single line (and exit code 2)."""


class InputError(ValueError):
    """Bad user input: the message names the file, the YAML path or the line, and the problem.

    Every layer raises this for anything a user can fix; the CLI prints ``str(err)`` on one
    line and exits with code 2, never with a traceback.
    """
