"""Training the recurrent models on cached features: their inputs, the snippet loader, and the
training loop with its checkpoints and scoring."""
