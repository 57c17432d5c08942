"""repap's error for a user's mistake (a bad argument, file or value): the command line shows
it as one line and exits 2. It is a ValueError, so code that catches ValueError keeps working;
any other exception escaping a command is a bug, shown as such (``-T`` for the traceback)."""


class InputError(ValueError):
    """Bad input: the message names the argument or file and what is wrong with it."""
