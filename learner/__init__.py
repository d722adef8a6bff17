"""The learner: event log → dataset, LightGBM, policy rewrite (coming with its issue)."""

__all__: list[str] = []
