"""The report: the claims and their evidence, tables beside the paper's numbers, figures, and
the assembly of report.md from the evaluations."""
