"""One error hierarchy for user-facing problems, caught once at the CLI boundary."""


class BenchError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


class ConfigError(BenchError):
    """An unknown or inconsistent option (names the valid choices)."""


class BackendUnavailable(BenchError):
    """A backend whose framework is not installed or whose device is absent."""


class DatasetError(BenchError):
    """A dataset that is missing, malformed, or fails verification (names the file)."""


class DownloadError(DatasetError):
    """A download that failed, was interrupted, or did not match its checksum."""


class CheckpointError(BenchError):
    """A checkpoint that cannot be loaded into the requested model."""


class DivergedError(BenchError):
    """Training produced a non-finite loss."""


class DiskFull(BenchError):
    """The disk under an output folder is full: the sweep stops, saying what did not run."""
