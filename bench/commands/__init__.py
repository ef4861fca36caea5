"""One module per subcommand of ``python -m bench``, each with its arguments and the
function that runs it; shared argument types in ``args``. ``bench/cli.py`` assembles them."""
