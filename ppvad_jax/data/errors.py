"""Errors of the data layer. Each message names the file (and line) at fault."""


class DataError(Exception):
    """Base class for every data-layer error."""


class VideoReadError(DataError):
    """A video file cannot be opened or decoded."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path}: {reason}")


class AnnotationError(DataError):
    """A malformed row in an annotation file."""

    def __init__(self, path, line_number, reason, line=None):
        self.path = str(path)
        self.line_number = line_number
        self.reason = reason
        where = f"{self.path}:{line_number}"
        shown = f" (line: {line.rstrip()!r})" if line is not None else ""
        super().__init__(f"{where}: {reason}{shown}")


class MissingDataError(DataError):
    """Raw data is not where it should be; the message says what to get."""
