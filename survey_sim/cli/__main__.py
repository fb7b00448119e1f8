"""``python -m survey_sim.cli``: the ``survey-sim`` command."""

from survey_sim.cli.main import main

raise SystemExit(main())
