"""One run: its configuration, its lifter, training, evaluation, checkpoints and record."""
