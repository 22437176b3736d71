"""The two ways a whole tagging run can fail, each reported as one line."""


class CommandError(Exception):
    """A failure of the whole run (model, I/O, resume), reported with exit code 1."""


class UsageError(Exception):
    """Options that cannot work together, reported with exit code 2 before anything is done.

    ``option`` names the option at fault, for the message.
    """

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option
