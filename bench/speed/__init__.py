"""Speed measurements that are not training runs: the harness against each framework's
own loop (``bench overhead``) and runtime settings (``bench tune``)."""
