"""Features, a model trained on them, and its report."""

from dagster import asset


@asset(group_name="ml")
def features(clean_events: list[dict]) -> list[float]:
    return [float(e["clicks"]) for e in clean_events]


@asset(group_name="ml")
def model(features: list[float]) -> float:
    return sum(features) / max(len(features), 1)


@asset(group_name="ml", deps=["model"])
def model_report() -> None:
    pass
