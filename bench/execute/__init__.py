"""Running jobs: the runner (one configuration end to end, in the process that holds one
framework), the isolated child process, and the local and Ray executors of a sweep's plan."""
