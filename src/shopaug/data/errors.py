"""The one exception a user sees for data that cannot be used at all."""


class DataError(ValueError):
    """A file or table that cannot be read: the message names the file and what is wrong.

    Row-level problems never raise; they become rejects with a reason (see ``validation``).
    """
