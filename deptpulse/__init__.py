"""deptpulse: the composition root (CLI, settings, local-stack launcher)."""
