"""``bench perf``: what each lifter costs, measured, and each fast path against its plain counterpart."""
