"""python -m pipeline.plan: the same as the videolstm-plan command."""

from pipeline.plan.cli import main

main()
