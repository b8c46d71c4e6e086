"""Sweeps: a sweep file's runs submitted as one job array (SLURM, local processes or in-process), and their states."""
