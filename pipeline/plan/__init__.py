"""videolstm-plan: what a run of the configured pipeline will cost before it starts (tasks, items,
bytes and time per stage), from the Luigi tasks' own graph and the videos' headers."""
